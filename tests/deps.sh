#!/usr/bin/env bash
# Makes sure what the tests need (tests/packages.txt) is installed.  As
# root on Debian (apt-get), installs what is missing; otherwise prints
# the one apt-get line that would, and the tests concerned say
# "SKIP (missing tool)" (which fails the run under CI=true).
# LKVM_NO_INSTALL=1 only reports.
set -u
cd "$(dirname "$0")/.."
missing=
while read -r check pkg; do
	case "$check" in ''|'#'*) continue ;; esac
	if [ "${check#/}" != "$check" ]; then
		compgen -G "$check" > /dev/null && continue
	elif command -v "$check" > /dev/null; then
		continue
	fi
	case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
done < tests/packages.txt
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null &&
   [ "${LKVM_NO_INSTALL:-0}" != 1 ]; then
	echo "tests: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	case "$missing" in
	*:arm64*) dpkg --add-architecture arm64 ;;
	esac
	apt-get update -qq > /dev/null 2>&1
	# One by one: a package this machine cannot have must not stop the rest.
	for p in $missing; do
		apt-get install -y -qq --no-install-recommends "$p" > /dev/null 2>&1 ||
			echo "tests: could not install $p"
	done
else
	echo "tests: missing packages; as root: apt-get install -y$missing"
fi
exit 0
