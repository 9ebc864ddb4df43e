// The Python module flash_mla._C. Loading it registers the torch ops (ops.cpp, static
// initialisers of TORCH_LIBRARY); it also exposes a few pure helpers of the library that the
// Python side needs (fake implementations must compute the same shapes as the real ops).
// Plain CPython API: no pybind11, nothing here touches CUDA.
#include <Python.h>

#include <exception>
#include <string>

#include "flashmla/flashmla.h"

namespace {

// num_sm_parts_for(num_sms: int, num_q_tokens_per_head_k: int, num_heads_k: int) -> int
PyObject* py_num_sm_parts_for(PyObject*, PyObject* args) {
  int num_sms = 0, ntok = 0, hkv = 0;
  if (!PyArg_ParseTuple(args, "iii:num_sm_parts_for", &num_sms, &ntok, &hkv)) return nullptr;
  try {
    return PyLong_FromLong(flashmla::num_sm_parts_for(num_sms, ntok, hkv));
  } catch (const flashmla::Error& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// workspace_size(num_sm_parts: int, num_q_tokens_per_head_k: int, num_heads_k: int) -> int (bytes)
PyObject* py_workspace_size(PyObject*, PyObject* args) {
  int parts = 0, ntok = 0, hkv = 0;
  if (!PyArg_ParseTuple(args, "iii:workspace_size", &parts, &ntok, &hkv)) return nullptr;
  try {
    return PyLong_FromSize_t(flashmla::mla_decode_workspace_size(parts, ntok, hkv));
  } catch (const flashmla::Error& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef methods[] = {
    {"num_sm_parts_for", py_num_sm_parts_for, METH_VARARGS,
     "num_sm_parts_for(num_sms, num_q_tokens_per_head_k, num_heads_k) -> rows of tile_scheduler_metadata"},
    {"workspace_size", py_workspace_size, METH_VARARGS,
     "workspace_size(num_sm_parts, num_q_tokens_per_head_k, num_heads_k) -> bytes of split-KV scratch"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "flashmla torch binding: importing it registers torch.ops.flash_mla.*",
    -1,
    methods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  const std::string version = std::to_string(FLASHMLA_VERSION_MAJOR) + "." +
                              std::to_string(FLASHMLA_VERSION_MINOR) + "." +
                              std::to_string(FLASHMLA_VERSION_PATCH);
  PyModule_AddStringConstant(module, "__version__", version.c_str());
  PyModule_AddIntConstant(module, "METADATA_FIELDS", flashmla::kMetadataFields);
  PyModule_AddIntConstant(module, "HEAD_DIM_QK", flashmla::kHeadDimQK);
  PyModule_AddIntConstant(module, "HEAD_DIM_V", flashmla::kHeadDimV);
  PyModule_AddIntConstant(module, "PAGE_BLOCK_SIZE", flashmla::kPageBlockSize);
  return module;
}
