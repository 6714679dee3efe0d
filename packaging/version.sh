#!/bin/sh
# The Debian package version from git: the tag v1.2.3 is 1.2.3; commits
# after a tag are 1.2.3+gitYYYYMMDD.HASH (after 1.2.3, before 1.2.4); with
# no tag at all, 0.0~gitYYYYMMDD.HASH. The date is the commit's (UTC), so
# building the same commit twice gives the same version.
set -eu
cd "$(dirname "$0")/.."
hash=$(git rev-parse --short=7 HEAD 2>/dev/null) || { echo "0.0~git$(date -u +%Y%m%d).unknown"; exit 0; }
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
	echo "${tag#v}" | tr - "~" # v1.3.0-rc1 sorts before 1.3.0: 1.3.0~rc1
elif tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
	echo "$(echo "${tag#v}" | tr - "~")+git${date}.${hash}"
else
	echo "0.0~git${date}.${hash}"
fi
