#!/usr/bin/env bash
# pirec devices: works on a machine without sound cards, lists a fake /proc/asound tree
# as a table and as JSON, and says clearly what is wrong with bad arguments.
set -euo pipefail
bin=${PIREC_BIN:?}
tmp=${TEST_TMP:?}
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. the real machine: exit 0 whatever is plugged in; with no cards, say so
out=$("$bin" devices) || fail "pirec devices exited $?"
if ! ls /dev/snd/pcmC*c >/dev/null 2>&1; then
  [[ "$out" == *"no capture devices found"* ]] || fail "expected 'no capture devices found', got: $out"
fi
"$bin" devices --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["devices"], list)' \
  || fail "pirec devices --json is not a JSON object with a devices list"

# 2. a fake tree with one USB interface (two capture PCMs) and a playback-only card
fake=$tmp/asound
mkdir -p "$fake/card1/pcm0c" "$fake/card1/pcm1c" "$fake/card2/pcm0p"
echo USB > "$fake/card1/id"
echo vc4hdmi > "$fake/card2/id"
cat > "$fake/cards" <<'CARDS'
 1 [USB            ]: USB-Audio - Scarlett 2i2 USB
                      Focusrite Scarlett 2i2 USB at usb-0000:01:00.0-1.3, high speed
 2 [vc4hdmi        ]: vc4-hdmi - vc4-hdmi
                      vc4-hdmi
CARDS
printf 'formats: S16_LE S24_3LE S32_LE\nrates: 44100 48000 96000 192000\nchannels: 2\n' > "$fake/card1/pcm0c/pirec-caps"

"$bin" devices --json --proc "$fake" > "$tmp/devices.json" || fail "devices --json --proc exited $?"
/usr/bin/python3 - "$tmp/devices.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
assert len(d) == 2, d
a, b = d
assert a["id"] == "usb" and a["card_id"] == "USB" and a["card"] == 1 and a["device"] == 0, a
assert a["name"] == "Scarlett 2i2 USB", a
assert a["pcm"] == "hw:CARD=USB,DEV=0", a
assert a["formats"] == ["S16_LE", "S24_3LE", "S32_LE"], a
assert a["rates"] == [44100, 48000, 96000, 192000], a
assert a["rate_min"] == 44100 and a["rate_max"] == 192000, a
assert a["channels_min"] == 2 and a["channels_max"] == 2, a
assert b["id"] == "usb-1" and b["pcm"] == "hw:CARD=USB,DEV=1" and b["formats"] == [], b
PY

table=$("$bin" devices --proc "$fake") || fail "table exited $?"
echo "$table"
grep -q '^usb .*Scarlett 2i2 USB.*hw:CARD=USB,DEV=0.*S16_LE,S24_3LE,S32_LE.*44100,48000,96000,192000' <<<"$table" \
  || fail "table row for usb missing or wrong"
grep -q 'vc4' <<<"$table" && fail "a playback-only card is listed"

# 3. bad input: clear messages, right exit codes, no crash
set +e
"$bin" devices --proc "$tmp/nonexistent" > /dev/null 2> "$tmp/err"; rc=$?
set -e
[[ $rc == 1 ]] || fail "missing --proc dir: exit $rc, wanted 1"
grep -q "cannot read .*nonexistent" "$tmp/err" || fail "no clear message: $(cat "$tmp/err")"
set +e
"$bin" devices --bogus > /dev/null 2> "$tmp/err"; rc=$?
"$bin" devices --watch --interval 0 > /dev/null 2>> "$tmp/err"; rc2=$?
set -e
[[ $rc == 2 && $rc2 == 2 ]] || fail "bad options: exit $rc/$rc2, wanted 2"
grep -q "usage: pirec devices" "$tmp/err" || fail "no usage on a bad option"
grep -q "interval wants milliseconds" "$tmp/err" || fail "no message for a bad interval"
echo "ok"
