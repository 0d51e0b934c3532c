#!/usr/bin/env bash
# Hostile but fair inputs, each run through graft under a memory cap and a timeout, and
# classified: clear one-line error / crash by signal / hang / memory above 1 GiB /
# partial output left / accepted silently (for inputs that must be refused).
#   scripts/badinput.sh [GRAFT_BINARY]      (default build/graft)
# Prints a Markdown table (one row per case, then the totals) for docs/RELIABILITY.md.
# Rerunnable: everything lives in a fresh temp folder, removed at the end.
# With root rights it also fills a small tmpfs to check writes on a full disk.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
graft="$(realpath "${1:-$here/build/graft}")"
W="$(mktemp -d /tmp/graft-badinput-XXXXXX)"
trap 'umount "$W/full" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
/usr/bin/python3 "$here/scripts/make_bad_inputs.py" "$W" || { echo "corpus generation failed"; exit 1; }
export GRAFT_DATA="$W/cache"
T=(--threads 1)
TIMEOUT=${BADINPUT_TIMEOUT:-120}
MEM_CAP=$((8 << 30))  # address-space cap: a runaway allocation fails instead of swapping the machine

# Reference models: a tabular one (4 features, classes 0-2) and an image one (1x8x8 gray).
"$graft" train "${T[@]}" --quiet --model mlp --data npy:x.npy,y.npy --epochs 1 --out ref_tab >/dev/null 2>&1
"$graft" train "${T[@]}" --quiet --model mlp --data folder:imgs@gray --epochs 1 --out ref_img >/dev/null 2>&1
[ -f ref_tab/model.ckpt ] && [ -f ref_img/model.ckpt ] || { echo "could not train the reference models"; exit 1; }
/usr/bin/python3 - <<'PY'
b = bytearray(open("ref_tab/model.ckpt", "rb").read())
b[len(b) // 2] ^= 0x10
open("flipped.ckpt", "wb").write(bytes(b))
open("truncated.ckpt", "wb").write(bytes(b[: len(b) * 2 // 3]))
PY

total=0; clear=0; crash=0; hang=0; blowup=0; partial=0; silent=0; unclear=0
rows=""

# case NAME TOKEN OUT -- ARGS...: TOKEN must appear in the error line; OUT (or -) is an
# output path that must not exist afterwards.
case_() {
  local name="$1" token="$2" out="$3"; shift 4
  local err="$W/err.txt" tm="$W/time.txt" rc kb verdict line
  rm -rf "$out" 2>/dev/null
  prlimit --as=$MEM_CAP -- /usr/bin/time -f "%M" -o "$tm" timeout -k 5 "$TIMEOUT" "$graft" "$@" >/dev/null 2>"$err"
  rc=$?
  kb=$(tail -1 "$tm" 2>/dev/null | tr -dc 0-9); kb=${kb:-0}
  line=$(grep -m1 "^graft: error" "$err" || true)
  total=$((total + 1))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict="HANG"; hang=$((hang + 1))
  elif [ $rc -gt 128 ] || grep -q "terminate called\|Segmentation\|Aborted\|AddressSanitizer" "$err"; then
    verdict="CRASH (rc $rc)"; crash=$((crash + 1))
  elif [ "$kb" -gt $((1 << 20)) ]; then verdict="MEMORY $((kb / 1024)) MiB"; blowup=$((blowup + 1))
  elif [ $rc -eq 0 ]; then verdict="ACCEPTED SILENTLY"; silent=$((silent + 1))
  elif [ "$out" != "-" ] && [ -e "$out" ] && [ -n "$(find "$out" -type f ! -name .lock 2>/dev/null)" ]; then
    verdict="PARTIAL OUTPUT"; partial=$((partial + 1))
  # A usage error (exit 2) ends with the hint line "Run 'graft VERB --help' for usage.".
  elif [ -n "$line" ] && [ "$(grep -c "^graft: error" "$err")" -eq 1 ] &&
       [ "$(grep . "$err" | grep -v "^Run 'graft .*--help' for usage\.$" | tail -1)" = "$line" ] &&
       [[ "$line" == *"$token"* ]]; then
    verdict="clear"; clear=$((clear + 1))
    # Progress lines before the error are fine; other libraries' diagnostics are noted.
    local noise; noise=$(grep -v "^graft" "$err" | grep -i "error\|warn" | head -1 | cut -c1-60)
    [ -n "$noise" ] && verdict="clear (+ \"$noise\")"
  else verdict="UNCLEAR"; unclear=$((unclear + 1))
  fi
  local shown="${line:-$(head -c 200 "$err" | tr '\n' ' ')}"
  shown="${shown//$W\//}"; shown="${shown//|/\\|}"
  rows+="| $name | $rc | $((kb / 1024)) | $verdict | ${shown:0:160} |"$'\n'
}

D=npy:x.npy,y.npy
# Labels.
case_ "npy label 10^12, data info" y_1e12.npy - -- data info npy:x.npy,y_1e12.npy
case_ "npy label 10^12, train" y_1e12.npy o -- train "${T[@]}" --model mlp --data npy:x.npy,y_1e12.npy --epochs 1 --out o
case_ "npy label 10^6 (12 examples), train" y_1e6.npy o -- train "${T[@]}" --model mlp --data npy:x.npy,y_1e6.npy --epochs 1 --out o
case_ "npy label -5, data info" y_neg.npy - -- data info npy:x.npy,y_neg.npy
case_ "npy float labels" y_float.npy - -- data info npy:x.npy,y_float.npy
case_ "npy label count differs" y_short.npy - -- data info npy:x.npy,y_short.npy
case_ "npy NaN inputs" x_nan.npy - -- data info npy:x_nan.npy,y.npy
case_ "linear fit, label 10^12" y_1e12.npy c.bin -- linear fit --features x.npy --labels y_1e12.npy --out c.bin
case_ "linear fit, label 10^6" y_1e6.npy c.bin -- linear fit --features x.npy --labels y_1e6.npy --out c.bin
# .npy headers.
case_ "npy garbage shape (abc, 3)" shape_garbage.npy - -- data info npy:shape_garbage.npy
case_ "npy shape 10^12 x 10^6" shape_huge.npy - -- data info npy:shape_huge.npy
case_ "npy shape 10^8 x 100, 64 bytes" shape_big.npy - -- data info npy:shape_big.npy
case_ "npy negative shape" shape_neg.npy - -- data info npy:shape_neg.npy
case_ "npy complex dtype" dtype_complex.npy - -- data info npy:dtype_complex.npy
case_ "npy truncated data" truncated.npy - -- data info npy:truncated.npy
case_ "npy that is a CSV" not_npy.npy - -- data info npy:not_npy.npy
case_ "npy empty file" empty.npy - -- data info npy:empty.npy
case_ "npy that is a folder" imgs - -- data info npy:imgs
case_ "npy missing" nope.npy - -- data info npy:nope.npy
# IDX.
case_ "IDX 0x0 images, data info" idx_0x0_img - -- data info idx:idx_0x0_img,idx_lab5
case_ "IDX 0x0 images, train" idx_0x0_img o -- train "${T[@]}" --model mlp --data idx:idx_0x0_img,idx_lab5 --epochs 1 --out o
case_ "IDX header 60000x28x28, 10 bytes" idx_short_img - -- data info idx:idx_short_img,idx_lab5
case_ "IDX dims overflow 64 bits" idx_overflow_img - -- data info idx:idx_overflow_img,idx_lab5
case_ "IDX gzip promising 10^11 bytes" idx_bomb.gz - -- data info idx:idx_bomb.gz,idx_lab5
case_ "IDX bad magic" idx_bad_magic - -- data info idx:idx_bad_magic,idx_lab5
case_ "IDX truncated gzip" idx_bad.gz - -- data info idx:idx_bad.gz,idx_lab5
case_ "npy label 5000 with 12 examples, train" "5000" o -- train "${T[@]}" --model mlp --data npy:x.npy,y_5000.npy --epochs 1 --out o
case_ "IDX that is a folder" imgs - -- data info idx:imgs,idx_lab5
# Images.
case_ "PNG 20000x20000 (1 MB), data info" huge.png - -- data info folder:huge
case_ "PNG 20000x20000, predict" huge.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt huge/a/huge.png --out p.csv
case_ "PNG header 32767x32767, predict" forged_32767.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt forged_32767.png --out p.csv
case_ "PNG 20000^2 under --max-pixels 1000" huge.png - -- data info folder:huge@max-pixels=1000
case_ "image that is a folder, predict" a_folder.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt a_folder.png --out p.csv
case_ "empty image, predict" empty.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt empty.png --out p.csv
case_ "text named .png, predict" text.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt text.png --out p.csv
case_ "truncated PNG, predict" truncated.png p.csv -- predict "${T[@]}" --model ref_img/model.ckpt truncated.png --out p.csv
case_ "folder with a garbage image, train" "0.png" o -- train "${T[@]}" --model mlp --data folder:imgs_bad@gray --epochs 1 --out o
case_ "--max-pixels -5" max-pixels - -- data info folder:imgs --max-pixels -5
# List files.
case_ "list label 10^20" list_huge_label.txt - -- data info list:list_huge_label.txt
case_ "list label 50000 with 2 lines" list_many_classes.txt - -- data info list:list_many_classes.txt
case_ "list line without label" list_no_label.txt - -- data info list:list_no_label.txt
case_ "list naming a missing image, train" nope.png o -- train "${T[@]}" --model mlp --data list:list_missing_file.txt@gray --epochs 1 --out o
case_ "list file that is a folder" list_dir.txt - -- data info list:list_dir.txt
# Dataset specs and transforms.
case_ "spec @limit=10^20" limit - -- data info "$D@limit=99999999999999999999"
case_ "spec @classes=0-10^11" "class" - -- data info "$D@classes=0-99999999999"
case_ "spec @per-class=10^22" per-class - -- data info "$D@per-class=99999999999999999999999"
case_ "spec unknown view" "@frobnicate" - -- data info "$D@frobnicate"
case_ "spec without ':'" "mnist" - -- data info mnist
case_ "spec @decode-size=0x5" decode-size - -- data info folder:imgs@decode-size=0x5
case_ "preprocess resize=1e400" "resize" o -- train "${T[@]}" --model mlp --data folder:imgs@gray --preprocess resize=1e400 --epochs 1 --out o
case_ "preprocess random-crop=8:1e300" "random-crop" o -- train "${T[@]}" --model mlp --data folder:imgs@gray --augment random-crop=8:1e300 --epochs 1 --out o
# Checkpoints and models.
case_ "bit-flipped checkpoint, eval" flipped.ckpt - -- eval "${T[@]}" --model flipped.ckpt --data $D
case_ "bit-flipped checkpoint, predict" flipped.ckpt p.csv -- predict "${T[@]}" --model flipped.ckpt --data $D --out p.csv
case_ "truncated checkpoint, eval" truncated.ckpt - -- eval "${T[@]}" --model truncated.ckpt --data $D
case_ "checkpoint that is a .npy" x.npy - -- eval "${T[@]}" --model x.npy --data $D
case_ "classifier that is a checkpoint" "ref_tab" - -- linear eval --classifier ref_tab/model.ckpt --features x.npy --labels y.npy
# Seeds.
case_ "train --seed -1" seed o -- train "${T[@]}" --model mlp --data $D --seed -1 --epochs 1 --out o
case_ "train --seed ''" seed o -- train "${T[@]}" --model mlp --data $D --seed '' --epochs 1 --out o
case_ "transfer --seeds ''" seed o -- transfer "${T[@]}" --model ref_tab/model.ckpt --train $D --test $D --seeds '' --out o
case_ "adapt --seeds ''" seed o -- adapt "${T[@]}" --source $D --target $D --seeds '' --out o
case_ "adapt --seeds 1,-2" seed o -- adapt "${T[@]}" --source $D --target $D --seeds 1,-2 --out o
case_ "linear fit --seed -1" seed c.bin -- linear fit --features x.npy --labels y.npy --seed -1 --out c.bin

echo "| case | exit | peak MiB | verdict | first error line |"
echo "|---|---|---|---|---|"
printf "%s" "$rows"
echo
echo "**$total inputs: $clear clear one-line errors, $crash crashes, $hang hangs, $blowup above 1 GiB, $partial partial outputs, $silent accepted silently, $unclear unclear.**"

# Disk full: a 1 MiB tmpfs (needs root); each write must fail with one line, no abort, no temp file.
echo
if [ "$(id -u)" -eq 0 ] && mkdir -p full && mount -t tmpfs -o size=1m tmpfs full 2>/dev/null; then
  /usr/bin/python3 -c "import numpy as np; np.save('wide.npy', np.random.rand(3000, 128).astype('float32')); np.save('wide_y.npy', (np.arange(3000) % 3).astype('int64'))"
  echo "| write on a full 1 MiB tmpfs (free space) | exit | verdict | error line | files left |"
  echo "|---|---|---|---|---|"
  full_case() {  # NAME FREE_KIB ARGS...: FREE_KIB 0 fills the disk completely
    local name="$1" free="$2"; shift 2
    rm -rf full/* full/.[!.]* 2>/dev/null
    dd if=/dev/zero of=full/filler bs=4k status=none 2>/dev/null
    [ "$free" -gt 0 ] && truncate -s "-${free}K" full/filler
    timeout 120 "$graft" "$@" >/dev/null 2>"$W/err.txt"; local rc=$?
    local line; line=$(grep -m1 "^graft: error" "$W/err.txt" || head -c 160 "$W/err.txt")
    local left; left=$(find full -type f ! -name filler ! -name .lock | sed "s|^full/||" | tr '\n' ' ')
    local v="clean"
    { [ $rc -gt 128 ] || [ $rc -eq 0 ]; } && v="FAILED (rc $rc)"
    [ -n "$(find full -name '*.tmp.*')" ] && v="TEMP FILE LEFT"
    line="${line//$W\//}"
    echo "| $name | $rc | $v | ${line:0:140} | ${left:-none} |"
  }
  full_case "linear fit --out (classifier), 0 KiB" 0 linear fit --features wide.npy --labels wide_y.npy --C 1 --out full/c.bin
  full_case "train --out, 0 KiB" 0 train "${T[@]}" --model mlp:512,512 --data npy:wide.npy,wide_y.npy --epochs 1 --out full/run
  full_case "train --out, 256 KiB (the checkpoint does not fit)" 256 train "${T[@]}" --model mlp:512,512 --data npy:wide.npy,wide_y.npy --epochs 1 --out full/run
  full_case "extract --out (.npy), 0 KiB" 0 extract "${T[@]}" --model ref_tab/model.ckpt --layers fc1 --data $D --out full/f.npy
  full_case "predict --out (CSV), 0 KiB" 0 predict "${T[@]}" --model ref_tab/model.ckpt --top 3 --data $D --out full/p.csv
  full_case "eval --json, 0 KiB" 0 eval "${T[@]}" --model ref_tab/model.ckpt --data $D --json full/e.json
  umount full
else
  echo "(disk-full table skipped: needs root to mount a small tmpfs)"
fi
