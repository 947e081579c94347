#!/usr/bin/env bash
# Prints the path of a CPython 3.8-3.10 interpreter (nnabla 1.39 ships wheels for those only).
# Looks at $PYTHON, then python3.10/3.9/3.8 on PATH, then pyenv's versions folder.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 10) else 1)' 2>/dev/null; }
cands=()
[ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
for v in 3.10 3.9 3.8; do
  p=$(command -v "python$v" 2>/dev/null) && cands+=("$p")
done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for v in 3.10 3.9 3.8; do
  for p in $(ls -d "$root"/versions/$v.*/bin/python 2>/dev/null | sort -rV); do cands+=("$p"); done
done
for p in "${cands[@]}"; do
  if ok "$p"; then echo "$p"; exit 0; fi
done
echo "error: no CPython 3.8-3.10 found (nnabla 1.39 has wheels for 3.8-3.10 only)." >&2
echo "       install one (e.g. 'pyenv install 3.10') or set PYTHON=/path/to/python3.10" >&2
exit 1
