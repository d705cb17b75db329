#!/usr/bin/env bash
# The README's set-up: installs the system libraries fn2e needs (Debian/Ubuntu; Tools/system_packages.sh),
# builds it in release mode and puts fn2e-compile and fn2e-run on the PATH. Works as root (no sudo needed, as in
# containers) and as a user with sudo. Run from anywhere: `bash Tools/setup.sh`.
#   FN2E_BIN   folder for the two commands (default: /usr/local/bin as root, else ~/.local/bin)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash Tools/system_packages.sh
swift build -c release

# The commands on the PATH: links into the build folder, so a later `swift build -c release` updates them.
if [ "$(id -u)" -eq 0 ]; then bin=${FN2E_BIN:-/usr/local/bin}; else bin=${FN2E_BIN:-$HOME/.local/bin}; fi
mkdir -p "$bin"
for tool in fn2e-compile fn2e-run; do
    ln -sf "$PWD/.build/release/$tool" "$bin/$tool"
done
echo "setup: $bin/fn2e-compile and $bin/fn2e-run link to $PWD/.build/release"
case ":$PATH:" in
    *":$bin:"*) ;;
    *) echo "setup: $bin is not on your PATH; add it: export PATH=\"$bin:\$PATH\"" ;;
esac
