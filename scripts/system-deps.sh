#!/usr/bin/env bash
# Make sure the Debian packages Sanji needs are present; sourced by test.sh (and demo.sh).
#
#   source scripts/system-deps.sh browser   the browser tests' packages, now; non-zero if they cannot be had
#   source scripts/system-deps.sh lib       only define ensure_system_packages (pass a word: a sourced
#                                           script without arguments sees its caller's arguments)
#   ensure_system_packages [--optional] PKG...
#
# Each package is checked first (chromium: `command -v chromium` or $SANJI_CHROMIUM; fonts-noto-cjk:
# `fc-list :lang=zh`; poppler-utils: `command -v pdftotext`; others: dpkg). Nothing is printed when all
# are present. Missing ones are installed with apt-get when running as root (one `apt-get update` per
# shell); otherwise the message says which command to run, and the function returns 1 (0 with --optional).
# Safe under `set -euo pipefail`; sets no shell options of its own.

SANJI_BROWSER_PACKAGES="chromium fonts-noto-cjk poppler-utils faketime"

_sanji_package_present() {
  case "$1" in
    chromium)
      if [ -n "${SANJI_CHROMIUM:-}" ] && command -v "$SANJI_CHROMIUM" >/dev/null 2>&1; then
        return 0
      fi
      command -v chromium >/dev/null 2>&1
      ;;
    fonts-noto-cjk)
      command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]
      ;;
    poppler-utils)
      command -v pdftotext >/dev/null 2>&1
      ;;
    *)
      command -v dpkg-query >/dev/null 2>&1 &&
        [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
      ;;
  esac
}

ensure_system_packages() {
  local optional=0 pkg command
  local -a missing=()
  if [ "${1:-}" = "--optional" ]; then
    optional=1
    shift
  fi
  for pkg in "$@"; do
    _sanji_package_present "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  command="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "${EUID:-1}" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "正在安装系统软件包 / installing system packages: ${missing[*]}" >&2
    if [ -z "${_SANJI_APT_UPDATED:-}" ]; then
      if ! apt-get -qq update; then
        echo "apt-get update 失败，请检查软件源和网络 / apt-get update failed: check the package sources and network" >&2
        return 1
      fi
      _SANJI_APT_UPDATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      echo "安装失败 / installation failed: $command" >&2
      return 1
    fi
    for pkg in "${missing[@]}"; do
      if ! _sanji_package_present "$pkg"; then
        echo "已安装但仍找不到 $pkg / $pkg was installed but is still not found" >&2
        return 1
      fi
    done
    return 0
  fi
  if [ "$optional" -eq 1 ]; then
    echo "提示：建议安装 ${missing[*]}，请运行：sudo $command" >&2
    echo "Note: ${missing[*]} recommended; run: sudo $command" >&2
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "缺少系统软件包 ${missing[*]}。请运行：sudo $command" >&2
    echo "Missing system packages: ${missing[*]}. Run: sudo $command" >&2
  else
    echo "缺少系统软件包 ${missing[*]}（Debian 包名），请用本机的包管理器安装 Chromium、Noto CJK 中文字体、poppler 工具和 faketime。" >&2
    echo "Missing system packages: ${missing[*]} (Debian names); install Chromium, the Noto CJK fonts, poppler-utils and faketime with this system's package manager (or set SANJI_CHROMIUM)." >&2
  fi
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Run directly: bash scripts/system-deps.sh browser | PKG...
  set -euo pipefail
  if [ "${1:-}" = "browser" ]; then
    # shellcheck disable=SC2086  # a list of words
    ensure_system_packages $SANJI_BROWSER_PACKAGES
  elif [ "$#" -gt 0 ]; then
    ensure_system_packages "$@"
  fi
elif [ "${1:-}" = "browser" ]; then
  # shellcheck disable=SC2086
  ensure_system_packages $SANJI_BROWSER_PACKAGES
fi
