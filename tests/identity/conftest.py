import os
import sys

# The builders module sits one folder up (shared with the contract tests in tests/).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
