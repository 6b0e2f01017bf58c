#!/usr/bin/env bash
# Checks that built executables hold no instruction above the portable x86-64-v3 baseline:
# no AMX tile instructions (they crash ggml on Sapphire Rapids and newer), no AVX-512 and no
# AVX-VNNI. Each binary is disassembled once; every hit is listed with the function it is in.
# Usage: scripts/check_portable.sh BINARY...   Exit 1 when any binary has such instructions.
set -euo pipefail

# What exists only beyond x86-64-v3, in objdump's AT&T syntax: AVX-512's registers, mask
# registers and broadcasts, and the mnemonics of AVX-512, AMX and (VEX) AVX-VNNI.
registers='%zmm|%k[0-7]([^0-9]|$)|\{1to[0-9]+\}'
mnemonics='	(ldtilecfg|sttilecfg|tileloadd|tileloaddt1|tilestored|tilerelease|tilezero|tdpb[su][su]d|tdpbf16ps|vpdpbusds?|vpdpwssds?|vpternlog[dq]|vperm[it]2[bwdq]|vperm[it]2p[sd]|vpermb|vpermw|vpcompress[bwdq]|vpexpand[bwdq]|vcompressp[sd]|vexpandp[sd]|vpmovu?s?(qd|qw|qb|dw|db|wb)|vpro[lr]v?[dq]|vpsravq|vpsraq|vrcp14[ps][sd]|vrsqrt14[ps][sd]|vrndscale[ps][sd]|vgetexp[ps][sd]|vgetmant[ps][sd]|vscalef[ps][sd]|vfixupimm[ps][sd]|vrange[ps][sd]|vreduce[ps][sd]|vpconflict[dq]|vplzcnt[dq]|vpopcnt[bwdq]|vpmultishiftqb|vcvtne2ps2bf16|vcvtneps2bf16|vdpbf16ps|valign[dq]|vp?blendm[bwdqps]+|v(extract|insert)[fi](32x4|32x8|64x2|64x4)|vbroadcast[fi](32x[248]|64x[24])|vshuf[fi](32x4|64x2)|vpmullq|vcvtt?p[sd]2u?qq|vcvtu?qq2p[sd]|vcvtt?p[sd]2udq|vcvtudq2p[sd]|k(mov|and|andn|or|xor|xnor|not|shiftl|shiftr|test|ortest|unpck|add)[bwdq])([ 	]|$)'

status=0
for bin in "$@"; do
  if ! hits=$(objdump -d --no-show-raw-insn "$bin" | awk -v reg="$registers" -v mn="$mnemonics" '
      /^[0-9a-f]+ <.*>:$/ { fn = $2 }
      $0 ~ reg || $0 ~ mn { n[fn]++; total++ }
      END { for (f in n) printf "  %6d in %s\n", n[f], f; exit total > 0 }'); then
    echo "check_portable: $bin has instructions above x86-64-v3 (AVX-512, AMX or AVX-VNNI):" >&2
    echo "$hits" | sort -rn | head -20 >&2
    status=1
  else
    echo "check_portable: $bin: no AMX, AVX-512 or AVX-VNNI instructions"
  fi
done
exit $status
