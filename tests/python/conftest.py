# The Python tests need a Hopper GPU (or FLASH_MLA_TEST_DEVICE=cpu with a development build, see
# mla_helpers.py); every test module skips itself cleanly when torch or the device is missing.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
