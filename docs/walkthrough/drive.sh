#!/bin/bash
# Drives the workbench in tmux at 80x24 as a user over SSH would; captures go to $OUT.
# Run from the repository root: docs/walkthrough/drive.sh (needs tmux; about 15 minutes on a CPU).
set -u
OUT=${OUT:-$(pwd)/docs/walkthrough}
WORK=${WORK:-$(mktemp -d)}
BIN=${BIN:-$(pwd)/.venv/bin/diffusionscope}
mkdir -p "$WORK" "$OUT"; cd "$WORK"
export DIFFUSIONSCOPE_CONFIG=$WORK/config OMP_NUM_THREADS=1
S=drive
# A server of its own: other tmux users on the host neither see nor end it.
tmux() { command tmux -L diffusionscope-walkthrough "$@"; }
cap() { sleep ${2:-1}; tmux capture-pane -t $S -p > "$OUT/$1.txt"; echo "captured $1"; }
until_see() { # pattern, timeout
  for _ in $(seq 1 ${2:-120}); do tmux capture-pane -t $S -p | grep -q -- "$1" && return 0; sleep 1; done
  echo "timeout waiting for $1"; tmux capture-pane -t $S -p; return 1; }
keys() { for k in "$@"; do tmux send-keys -t $S "$k"; sleep 0.3; done; }
tabs() { for _ in $(seq 1 $1); do tmux send-keys -t $S Tab; sleep 0.3; done; }
tmux kill-session -t $S 2>/dev/null
tmux new-session -d -s $S -x 80 -y 24 "cd $WORK && PS1='$ ' bash --norc"
sleep 1
tmux send-keys -t $S "clear; $BIN tui --runs-root runs" Enter
until_see "Start run" 60
keys C-l; until_see "params in all" 60; cap 01-load
tabs 7; keys Space; until_see "metrics options" 30
tabs 1; keys 1 6 0; tabs 5; keys 8; tabs 19; tmux send-keys -t $S -l "guidance-scale=1.5,5"
cap 02-form-sweep-typed-where-the-help-says 2
keys C-s; until_see "ETA [0-9]" 180; sleep 3; cap 03-live-whole-run-eta
keys C-q; until_see "Leave" 20; cap 04-quit-while-running
keys Enter; sleep 3
tmux send-keys -t $S "clear; $BIN runs --runs-root runs" Enter; until_see "digits-ldm" 60; cap 05-cli-runs-ids-whole
tmux send-keys -t $S "clear; $BIN tui --runs-root runs" Enter; until_see "Start run" 60
keys F2; until_see "metrics" 30; cap 06-runs-list-reattach
keys Enter; until_see "ETA" 60; sleep 3; cap 07-reattached
until_see "finished" 900; sleep 12; cap 08-sweep-view-results
keys 1; cap 09-live-tab-results
keys 5; cap 10-gpu-tab
keys m; cap 11-log-maximised
keys m Escape; sleep 1
keys F2; until_see "finished" 30; keys e; until_see "the form holds" 30; sleep 2
tabs 5; keys BSpace BSpace 1 0; cap 12-edit-and-run-steps-8-to-10 2
keys C-s; until_see "ETA" 180; until_see "finished" 900; sleep 12; cap 13-rerun-finished
keys Escape; until_see "Start run" 30; keys F2; until_see "2 runs" 30
keys / Escape Space Space; until_see "2 marked" 20; keys c; until_see "differs" 30; cap 14-compare-two-sweeps 2
keys g; cap 15-compare-next-chart
keys F1; sleep 1; keys PageDown; cap 16-help-pagedown
keys Escape C-q; sleep 3
tmux send-keys -t $S "exit" Enter
echo done
