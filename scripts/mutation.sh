#!/usr/bin/env bash
# Mutation testing with mutmut 3 (docs/testing.md): run mutmut on each MODULE, then print the table.
#
#   scripts/mutation.sh [--jobs N] [--together] [--max-minutes M] [--changed REV] [--list] [MODULE ...]
#
# MODULE: a source path (apr/identity/quality.py), a folder (apr/identity), a dotted module name
# (falsifiers.verdict) or a glob over mutant names ("apr.stamp.*"). Without MODULE: the 53 core
# modules below, about 14,500 mutants: about five hours with --jobs 2 on two cores (docs/testing.md, seventh
# pass); results stay in mutants/, so a stopped run resumes where it stopped. Each module runs on
# its own, so its time is recorded (mutants/mutation-times.tsv); --together runs them in one
# mutmut call (one clean-test run). --list prints the core modules, one a line.
# --changed REV: the modules under apr/ and falsifiers/ whose source differs from REV (committed or
# not, new files included), added to any MODULE given: the pass a change owes before it is merged
# (e.g. --changed origin/main). With --list, prints them instead.
# --jobs N: mutmut's --max-children (default 1; each child is one pytest process). --max-minutes M
# stops a module's run after M minutes (as Ctrl-C would); its row then says "(partial)": a biased
# sample, since mutmut runs the mutants with the fastest tests first.
#
# Configuration is [tool.mutmut] in pyproject.toml. Needs: pip install -e '.[test,mutation]'.
# The first run copies the sources to mutants/ and runs the whole suite once to learn which tests
# cover which function (about 6 min on two cores); later runs reuse that until pyproject.toml or
# the tests change. Results stay in mutants/ (git-ignored): `mutmut show NAME` shows a mutant's diff,
# and `python scripts/mutation_table.py --survivors MODULE` lists what survived.
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=(  # the core modules of issue 23: where a wrong answer is a wrong verdict or a damaged file
  falsifiers/verdict.py falsifiers/binding.py falsifiers/lint.py falsifiers/schema.py
  falsifiers/mutation.py falsifiers/mutant_runs.py
  apr/format/header.py apr/format/metadata.py apr/format/tensor_index.py apr/format/writer.py
  apr/format/reader.py apr/format/validate.py
  apr/identity/family.py apr/identity/quality.py apr/identity/explain.py
  apr/stamp/spdx.py apr/stamp/patch.py apr/stamp/plan.py apr/stamp/file.py apr/stamp/in_place.py
  apr/stamp/journal.py apr/stamp/journal_site.py apr/stamp/recovery.py apr/stamp/rewrite.py
  apr/stamp/source.py apr/stamp/verify.py
  apr/qa/gate.py apr/qa/gates.py apr/qa/plausibility.py apr/qa/runner.py apr/qa/throughput.py
  apr/readiness/gates.py apr/readiness/card.py apr/readiness/card_training.py
  apr/readiness/training_results.py apr/readiness/loss_curve.py
  apr/train/config.py apr/train/init_checkpoint.py apr/train/chinchilla.py apr/train/checkpoint.py
  apr/train/plan.py apr/train/bounds.py apr/train/train_state.py
  apr/convert/names.py apr/convert/hf_config.py apr/convert/export_fields.py apr/convert/gguf_fields.py
  apr/convert/gguf_carry.py apr/convert/tokenizer_source.py apr/convert/hf_side_files.py
  apr/cli/exit_codes.py apr/cli/main.py apr/cli/guard.py
)
PINNED=3.8.1

jobs=1
together=0
max_minutes=0
list=0
changed=""
modules=()
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --jobs=*) jobs="${1#--jobs=}"; shift ;;
    --together) together=1; shift ;;
    --max-minutes) max_minutes="$2"; shift 2 ;;
    --max-minutes=*) max_minutes="${1#--max-minutes=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    --list) list=1; shift ;;
    --changed) [ $# -ge 2 ] || { echo "error: --changed needs a revision (e.g. --changed origin/main)" >&2; exit 2; }
               changed="$2"; shift 2 ;;
    --changed=*) changed="${1#--changed=}"; shift ;;
    -*) echo "error: unknown option $1 (see scripts/mutation.sh --help)" >&2; exit 2 ;;
    *) modules+=("$1"); shift ;;
  esac
done
if [ -n "$changed" ]; then
  if ! git rev-parse --verify --quiet "$changed^{commit}" >/dev/null; then
    echo "error: --changed $changed: not a revision of this repository" >&2
    echo "  fix: name a branch, tag or commit (git log --oneline shows them), e.g. --changed origin/main" >&2
    exit 2
  fi
  # Python sources that still exist (a deleted module has nothing to mutate); __init__.py included.
  # New files not yet added to git count as changed too.
  mapfile -t -O "${#modules[@]}" modules < <( { git diff --name-only --diff-filter=d "$changed" -- \
    'apr/*.py' 'falsifiers/*.py'; git ls-files --others --exclude-standard -- 'apr/*.py' 'falsifiers/*.py'; } | sort -u)
  mapfile -t modules < <(printf '%s\n' ${modules[@]+"${modules[@]}"} | awk 'NF && !seen[$0]++')  # each once
  if [ ${#modules[@]} = 0 ]; then
    echo "== no module under apr/ or falsifiers/ differs from $changed: nothing to run" >&2
    exit 0
  fi
  if [ "$list" = 1 ]; then printf '%s\n' "${modules[@]}"; exit 0; fi
fi
if [ "$list" = 1 ]; then printf '%s\n' "${CORE[@]}"; exit 0; fi
[ ${#modules[@]} -gt 0 ] || modules=("${CORE[@]}")

if [ -x .venv/bin/mutmut ]; then
  MUTMUT=.venv/bin/mutmut PYTHON=.venv/bin/python
elif command -v mutmut >/dev/null; then
  MUTMUT=mutmut PYTHON=python3
else
  echo "error: mutmut is not installed" >&2
  echo "  fix: .venv/bin/pip install -e '.[test,mutation]'" >&2
  exit 2
fi
version=$("$MUTMUT" --version 2>/dev/null | awk '{print $NF}')
if [ "$version" != "$PINNED" ]; then
  echo "error: mutmut $version is installed; this configuration is measured with mutmut $PINNED" >&2
  echo "  fix: .venv/bin/pip install -e '.[test,mutation]'" >&2
  exit 2
fi

# CI=1: the derandomized `ci` Hypothesis profile (conftest.py). One thread per BLAS/OpenMP pool:
# mutmut forks a child per mutant from a process that has run torch, and an inherited thread pool
# deadlocks the child (each hang would end as a false timeout).
export CI=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# The contract plugin must stay silent inside mutants/: it is active only where a contracts folder
# exists, and its verdict exit codes (1 NO-GO, 2 UNKNOWN) would read to mutmut as "killed" and
# "interrupted". [tool.mutmut] also_copy never names contracts/; refuse a copy left by other means.
if [ -e mutants/contracts ]; then
  echo "error: mutants/contracts exists, so the contract plugin would judge each mutant run" >&2
  echo "  fix: rm -rf mutants/contracts  (and keep contracts/ out of [tool.mutmut] also_copy)" >&2
  exit 2
fi

# mutmut writes each mutated copy in place and, on the next run, keeps any copy newer than its
# source: a run stopped while "Generating mutants" can leave an empty copy that every later run
# reuses (then the stats run fails to import it). Refuse such a copy, naming it.
truncated=()
while IFS= read -r -d '' copy; do
  source="${copy#mutants/}"
  if [ -s "$source" ]; then truncated+=("$copy"); fi
done < <(find mutants -name '*.py' -size 0 -print0 2>/dev/null)
if [ ${#truncated[@]} -gt 0 ]; then
  echo "error: mutants/ holds empty copies of non-empty sources (a run stopped while generating mutants):" >&2
  printf '  %s\n' "${truncated[@]}" >&2
  echo "  fix: rm -f the files above and their .meta/.spans, or rm -rf mutants (the next run regenerates them)" >&2
  exit 2
fi

glob_of() {  # the mutant-name globs of one MODULE argument (the same rules as mutation_table.py)
  "$PYTHON" -c 'import sys; sys.path.insert(0, "scripts"); import mutation_table as t; print("\n".join(t.module_globs(sys.argv[1])[1]))' "$1"
}

count_of() {  # mutants mutmut generated for these globs (-1 before the first run has generated any)
  "$PYTHON" -c 'import sys; sys.path.insert(0, "scripts"); import mutation_table as t; print(t.count_mutants(sys.argv[1:]))' "$@"
}

mkdir -p mutants
run_mutmut() {  # label, globs...
  local label="$1"; shift
  local start end
  if [ "$(count_of "$@")" = 0 ]; then
    echo "== $label: no mutants (mutmut 3 mutates only undecorated functions and methods); skipped" >&2
    return 0
  fi
  start=$(date +%s%N)
  echo "== mutmut run --max-children $jobs $* ($label)" >&2
  local limit=()
  [ "$max_minutes" = 0 ] || limit=(timeout -s INT --kill-after=60 "$((max_minutes * 60))")
  local rc=0 note=""
  ${limit[@]+"${limit[@]}"} "$MUTMUT" run --max-children "$jobs" "$@" || rc=$?
  if [ "$rc" = 124 ]; then
    echo "== $label: stopped after $max_minutes min; the rest of its mutants are 'not run'" >&2
    note="stopped at $max_minutes min"
  elif [ "$rc" != 0 ]; then
    # mutmut stops with an assertion when no mutant matches; the first run only learns that here
    if [ "$(count_of "$@")" = 0 ]; then
      echo "== $label: no mutants (mutmut 3 mutates only undecorated functions and methods)" >&2
      return 0
    fi
    echo "error: mutmut run failed for $label (see its output above)" >&2
    exit 1
  fi
  end=$(date +%s%N)
  printf '%s\t%s\t%s\t%s\n' "$label" "$(( (end - start) / 1000000 ))e-3" "$(date -u +%FT%TZ)" "$note" \
    >> mutants/mutation-times.tsv
}

if [ "$together" = 1 ]; then
  globs=()
  for m in "${modules[@]}"; do mapfile -t -O "${#globs[@]}" globs < <(glob_of "$m"); done
  run_mutmut "together:${modules[*]}" "${globs[@]}"
else
  for m in "${modules[@]}"; do
    mapfile -t globs < <(glob_of "$m")
    run_mutmut "$m" "${globs[@]}"
  done
fi

echo "== $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ local changes)'), mutmut $version, $jobs worker(s), $(getconf _NPROCESSORS_ONLN) CPUs" >&2
exec "$PYTHON" scripts/mutation_table.py "${modules[@]}"
