"""Regenerate tests/train/data/hf_golden_logits.json with transformers (offline; run from the repo root:
`.venv/bin/python tests/train/data/make_hf_golden_logits.py`)."""
import json
import torch
import transformers
import sys
sys.path.insert(0, "tests/train")
from train_fixtures import golden_config, golden_weights, GOLDEN_IDS
out = {"transformers": transformers.__version__, "torch": torch.__version__, "ids": GOLDEN_IDS, "logits": {}}
for fam in ["llama", "qwen2", "qwen3"]:
    cfg = golden_config(fam)
    hf = getattr(transformers, cfg.hf_architecture)(transformers.AutoConfig.for_model(**cfg.to_hf_config())).eval()
    state = {k: torch.from_numpy(v) for k, v in golden_weights(cfg).items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    with torch.no_grad():
        logits = hf(torch.tensor([GOLDEN_IDS])).logits[0]
    out["logits"][fam] = [[round(float(x), 7) for x in row] for row in logits]
with open("tests/train/data/hf_golden_logits.json", "w") as f:
    json.dump(out, f)
print("ok")
