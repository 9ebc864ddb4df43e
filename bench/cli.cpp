// Command line of flashmla_bench and the default row set (shared/ANCHORS.md's rows, in its order).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "bench.h"

namespace bench {
namespace {

const char* kUsage =
    "usage: flashmla_bench [options]\n"
    "  default: every row of shared/ANCHORS.md (--rows all)\n"
    "  --rows grid|small|all     b=128 varlen causal grid, small-batch fixed rows, or both\n"
    "  --rows 'b,s_q,h_q,s_k,varlen;...'   rows of one's own (h_kv 1, causal, bf16), run like the grid\n"
    "  single configuration (any of these selects it; unset ones take the defaults shown):\n"
    "    --b 128 --s_q 1 --h_q 128 --h_kv 1 --s_k 4096 --varlen 1 --causal 1 --dtype bf16|fp16\n"
    "    --sm_parts 0             parts of the split plan (0: the library's num_sm_parts_for; a diagnostic)\n"
    "  --wide_schedule automatic|one_page|seesaw   schedule of the 64-row tiles, every row (DecodeArgs)\n"
    "  --repeats 7 --iters 20 --warmup 5   timing: median over repeats of iters back-to-back calls\n"
    "  --json FILE                write all rows, ceilings and device info as JSON\n"
    "  --check                    verify a cut-down case of each row against Backend::cpu first\n"
    "  --rotate 1|0               rotate q/cache copies so small rows do not run from L2 (default 1)\n"
    "  --graph 0|1                1: capture the iters calls into a CUDA graph and time its launches\n"
    "                             (the GPU's time, without the host's cost per call; default 0)\n"
    "  --settle 1|0               1: the first row is timed twice and the first pass dropped, so that\n"
    "                             no row is timed right after the GEMM ceiling's heat (default 1)\n"
    "  --pages random|contiguous  block tables: a random permutation of the pages (default, ANCHORS.md's\n"
    "                             recipe) or each request's pages consecutive in memory\n"
    "  --table_blocks 0           block-table width (max_blocks_per_seq) of every row: 0, the longest\n"
    "                             request's pages (ANCHORS.md's recipe); N, an engine's table sized to\n"
    "                             its longest context (N x 64 tokens; vLLM: max_model_len / 64)\n"
    "  --data flashmla|uniform|zeros  q and cache values: FlashMLA's test recipe, N(0, 1) / 10 clamped\n"
    "                             to [-1, 1] (default, ANCHORS.md's rows), uniform in [-1, 1), or all zero\n"
    "                             (a diagnostic: operands that switch no bits, for the power cap)\n"
    "  --read-gib 4               size of the streaming-read ceiling buffer\n"
    "  --device 0                 CUDA device\n";

int to_int(const std::string& name, const std::string& v) {
  size_t pos = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &pos);
  } catch (const std::exception&) {
    pos = std::string::npos;
  }
  if (pos != v.size() || x < -2147483647LL || x > 2147483647LL) {
    throw std::runtime_error("--" + name + ": expected an integer, got '" + v + "'");
  }
  return static_cast<int>(x);
}

bool to_bool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  throw std::runtime_error("--" + name + ": expected 0 or 1, got '" + v + "'");
}

// --rows "b,s_q,h_q,s_k,varlen;...": rows of one's own, timed in one run like the grid's (h_kv 1,
// causal, bf16; a row's time depends on the state earlier rows leave the GPU in, so a set of rows
// run together compares with the grid where single runs do not).
std::vector<Config> listed_rows(const std::string& list) {
  std::vector<Config> rows;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t end = std::min(list.find(';', begin), list.size());
    const std::string item = list.substr(begin, end - begin);
    begin = end + 1;
    if (item.empty()) continue;
    int v[5];
    size_t at = 0;
    for (int k = 0; k < 5; ++k) {
      const size_t comma = k < 4 ? item.find(',', at) : item.size();
      if (comma == std::string::npos) {
        throw std::runtime_error("--rows: expected grid, small, all or 'b,s_q,h_q,s_k,varlen;...', got '" + list + "'");
      }
      v[k] = to_int("rows", item.substr(at, comma - at));
      at = comma + 1;
    }
    Config c;
    c.b = v[0];
    c.s_q = v[1];
    c.h_q = v[2];
    c.s_k = v[3];
    c.varlen = v[4] != 0;
    c.causal = true;
    if (c.b < 1 || c.s_q < 1 || c.h_q < 1 || c.s_k < 1) throw std::runtime_error("--rows: invalid row '" + item + "'");
    rows.push_back(c);
  }
  if (rows.empty()) throw std::runtime_error("--rows: no rows in '" + list + "'");
  return rows;
}

}  // namespace

std::vector<Config> grid_rows() {
  std::vector<Config> rows;
  for (int h_q : {128, 64, 32, 16}) {
    for (int s_q : {1, 2}) {
      for (int s_k : {4096, 8192, 16384, 32768}) {
        Config c;
        c.b = 128;
        c.s_q = s_q;
        c.h_q = h_q;
        c.s_k = s_k;
        c.varlen = true;
        c.causal = true;
        rows.push_back(c);
      }
    }
  }
  return rows;
}

std::vector<Config> small_rows() {
  std::vector<Config> rows;
  for (int b : {1, 4, 16}) {
    for (int h_q : {128, 16}) {
      Config c;
      c.b = b;
      c.s_q = 1;
      c.h_q = h_q;
      c.s_k = 32768;
      c.varlen = false;
      c.causal = true;
      rows.push_back(c);
    }
  }
  return rows;
}

Options parse_args(int argc, char** argv) {
  Options opt;
  Config single;
  bool have_single = false;
  std::string rows = "all";
  flashmla::WideSchedule wide_schedule = flashmla::WideSchedule::automatic;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) throw std::runtime_error("unexpected argument '" + arg + "'\n" + kUsage);
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool flag = name == "check";
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (!flag) {
      if (i + 1 >= argc) throw std::runtime_error("--" + name + " needs a value");
      value = argv[++i];
    }
    if (name == "b") { single.b = to_int(name, value); have_single = true; }
    else if (name == "s_q") { single.s_q = to_int(name, value); have_single = true; }
    else if (name == "h_q") { single.h_q = to_int(name, value); have_single = true; }
    else if (name == "h_kv") { single.h_kv = to_int(name, value); have_single = true; }
    else if (name == "s_k") { single.s_k = to_int(name, value); have_single = true; }
    else if (name == "varlen") { single.varlen = to_bool(name, value); have_single = true; }
    else if (name == "causal") { single.causal = to_bool(name, value); have_single = true; }
    else if (name == "sm_parts") {
      single.sm_parts = to_int(name, value);
      if (single.sm_parts < 0) throw std::runtime_error("--sm_parts: expected 0 or more, got '" + value + "'");
      have_single = true;
    }
    else if (name == "dtype") {
      if (value == "bf16") single.dtype = flashmla::DType::bf16;
      else if (value == "fp16") single.dtype = flashmla::DType::fp16;
      else throw std::runtime_error("--dtype: expected bf16 or fp16, got '" + value + "'");
      have_single = true;
    }
    else if (name == "rows") rows = value;
    else if (name == "wide_schedule") {
      if (!flashmla::wide_schedule_from_name(value.c_str(), wide_schedule)) {
        throw std::runtime_error("--wide_schedule: expected automatic, one_page or seesaw, got '" + value + "'");
      }
    }
    else if (name == "repeats") opt.repeats = to_int(name, value);
    else if (name == "iters") opt.iters = to_int(name, value);
    else if (name == "warmup") opt.warmup = to_int(name, value);
    else if (name == "device") opt.device = to_int(name, value);
    else if (name == "json") opt.json_path = value;
    else if (name == "check") opt.check = value.empty() ? true : to_bool(name, value);
    else if (name == "rotate") opt.rotate = to_bool(name, value);
    else if (name == "graph") opt.graph = to_bool(name, value);
    else if (name == "settle") opt.settle = to_bool(name, value);
    else if (name == "pages") {
      if (value == "random") opt.contiguous_pages = false;
      else if (value == "contiguous") opt.contiguous_pages = true;
      else throw std::runtime_error("--pages: expected random or contiguous, got '" + value + "'");
    }
    else if (name == "table_blocks") {
      opt.table_blocks = to_int(name, value);
      if (opt.table_blocks < 0) throw std::runtime_error("--table_blocks: expected 0 or more, got '" + value + "'");
    }
    else if (name == "data") {
      if (value == "flashmla") opt.data = DataRecipe::flashmla;
      else if (value == "uniform") opt.data = DataRecipe::uniform;
      else if (value == "zeros") opt.data = DataRecipe::zeros;
      else throw std::runtime_error("--data: expected flashmla, uniform or zeros, got '" + value + "'");
    }
    else if (name == "read-gib") opt.read_gib = std::stod(value);
    else throw std::runtime_error("unknown option --" + name + "\n" + kUsage);
  }
  if (opt.repeats < 1 || opt.iters < 1 || opt.warmup < 0) {
    throw std::runtime_error("--repeats and --iters must be >= 1, --warmup >= 0");
  }
  if (opt.read_gib <= 0) throw std::runtime_error("--read-gib must be > 0");
  if (have_single) {
    if (single.b < 1 || single.s_q < 1 || single.h_q < 1 || single.h_kv < 1 || single.s_k < 1 ||
        single.h_q % single.h_kv != 0) {
      throw std::runtime_error("invalid configuration: " + describe(single) +
                               " (all sizes >= 1, h_q a multiple of h_kv)");
    }
    opt.configs.push_back(single);
  } else if (rows == "grid") {
    opt.configs = grid_rows();
  } else if (rows == "small") {
    opt.configs = small_rows();
  } else if (rows == "all") {
    opt.configs = grid_rows();
    for (const Config& c : small_rows()) opt.configs.push_back(c);
  } else {
    opt.configs = listed_rows(rows);
  }
  for (Config& c : opt.configs) c.wide_schedule = wide_schedule;
  return opt;
}

}  // namespace bench
