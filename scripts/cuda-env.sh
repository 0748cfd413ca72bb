# Source this before building kiln with the `cuda` feature:
#   source scripts/cuda-env.sh && cargo build --release --features cuda
# The first time it installs Debian packages (through sudo when not root).
#
# cubecl-cuda links LLVM statically through tracel-llvm-bundler, whose build script downloads an
# LLVM 23 bundle from GitHub unless the bundle's install marker exists. Offline, this script
#  1. installs LLVM 22's static libraries and what linking them needs from Debian's packages
#     (once; where the system's apt sources lack llvm-22-dev, as on Debian 12 and 13, from Debian
#     testing "forky", pinned so that only LLVM 22 and what it depends on come from there: on
#     Debian 12 that upgrades libc6, libstdc++6 and a few libraries with them);
#  2. lays the bundler's marker and, beside it, a `bin/llvm-config` that answers with Debian's
#     LLVM 22 (the only thing the build asks the bundle for);
#  3. checks that Cargo.lock still pins the bundler version it lays the marker for.
# Running needs only the NVIDIA driver: the LLVM linked in compiles kernels to PTX at run time.
# Exported: KILN_LLVM_CONFIG, the wrapper's path. Running it (bash scripts/cuda-env.sh) does the
# same without exporting.
_kiln_cuda_env() (
  set -euo pipefail
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # The bundler's version: the marker's folder is named after it. Change it only with Cargo.lock.
  bundler=23.1.0-4
  packages=(llvm-22-dev libpolly-22-dev libzstd-dev libz3-dev zlib1g-dev)
  say() { echo "cuda-env: $*" >&2; }

  locked=$(awk '/^name = "tracel-llvm-bundler"$/ { getline; gsub(/version = |"/, ""); print }' "$root/Cargo.lock")
  if [ -n "$locked" ] && [ "$locked" != "$bundler" ]; then
    say "Cargo.lock has tracel-llvm-bundler $locked, this script knows $bundler: the marker would be laid in the wrong folder and the build would try to download LLVM. Check the new bundler's build.rs and llvm-config calls, then set bundler=$locked in scripts/cuda-env.sh"
    return 1
  fi

  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || {
        say "needs these Debian packages, which only root can install: ${missing[*]}"
        return 1
      }
      as_root=(sudo)
    fi
    target=()
    if ! apt-cache policy llvm-22-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      if ! grep -qi '^ID=debian' /etc/os-release; then
        say "llvm-22-dev is not in this system's apt sources: add LLVM's own (https://apt.llvm.org, 'llvm.sh 22') and source this again"
        return 1
      fi
      say "llvm-22-dev is not in this system's Debian release: taking it from Debian testing (forky), pinned"
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: forky\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
        "${as_root[@]}" tee /etc/apt/sources.list.d/kiln-llvm-22.sources >/dev/null
      # Priority 100: nothing is taken from forky unless asked for (-t forky) or needed by it.
      printf 'Package: *\nPin: release n=forky\nPin-Priority: 100\n' |
        "${as_root[@]}" tee /etc/apt/preferences.d/kiln-llvm-22 >/dev/null
      target=(-t forky)
    fi
    "${as_root[@]}" apt-get update -q >/dev/null
    say "installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${target[@]}" "${missing[@]}" >/dev/null
  fi

  dir="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$bundler"
  mkdir -p "$dir/bin"
  # `--system-libs` names libz3 by its absolute path, which the bundler would turn into
  # `-llibz3`; as `-lz3` the linker finds it.
  cat >"$dir/bin/llvm-config.new" <<'EOF'
#!/bin/sh
# Written by kiln's scripts/cuda-env.sh: tracel-llvm-bundler's llvm-config, answered by Debian's LLVM 22.
out=$(/usr/lib/llvm-22/bin/llvm-config "$@") || exit $?
printf '%s\n' "$out" | sed -e 's#/[^ ]*/libz3\.so[^ ]*#-lz3#g'
EOF
  chmod +x "$dir/bin/llvm-config.new"
  mv "$dir/bin/llvm-config.new" "$dir/bin/llvm-config"
  "$dir/bin/llvm-config" --link-static --libs >/dev/null || {
    say "$dir/bin/llvm-config does not answer: is /usr/lib/llvm-22 complete (llvm-22-dev, libpolly-22-dev)?"
    return 1
  }
  touch "$dir/.tracel-llvm-installed"
  echo "$dir/bin/llvm-config"
)

if _kiln_llvm_config=$(_kiln_cuda_env); then
  [ "${BASH_SOURCE[0]}" != "$0" ] && export KILN_LLVM_CONFIG="$_kiln_llvm_config"
  unset _kiln_llvm_config
  unset -f _kiln_cuda_env
  true
else
  unset _kiln_llvm_config
  unset -f _kiln_cuda_env
  # Sourced: hand the failure to the caller's `&&`; run: exit with it.
  (return 0 2>/dev/null) && return 1 || exit 1
fi
