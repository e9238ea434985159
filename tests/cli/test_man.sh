#!/bin/sh
# test_man.sh - the man pages (docs/man/*.1, *.8) agree with the programs' --help (issue #5).
#
# Each page names the help texts it documents in roff comments, the first on its second line:
#   .\" help: skr report --help
# (a command line of skr, skrd or skr-emu whose standard output is the help text). Per page:
#   - it has a help: line, each help command exits 0 and prints something;
#   - .TH names the file (SKR-REPORT 1 = skr-report.1), NAME, SYNOPSIS, DESCRIPTION, OPTIONS
#     (when the help has options), EXIT STATUS and SEE ALSO are there;
#   - groff -man -ww renders it without a warning;
#   - the options the help texts mention equal the options the page mentions, both ways, each
#     missing one named: long options (--name) and single-dash flags of two or more letters
#     (skrd's -port, -loglevel); --help, --version and -h, which every program takes, are left
#     out. Comments do not count;
#   - every option a help text defines (in its usage block, or first on a line) has a .TP entry
#     in the page, not only a mention;
#   - every SKR_*, UVM_* and AZURE_* variable the help texts name is in the page (which then
#     needs an ENVIRONMENT section);
#   - every skr/skrd page it refers to as NAME(N) exists; docs/meson.build installs it.
# Across pages: every command of `skr --help` is listed in skr.1 and documented by a page with
# a help: line `skr <command> ...` that names `skr <command>`; every help command of
# scripts/gen-cli-doc is documented by a page; skr.1 refers to every other page.
# The checks are first run on broken copies of a page, which must fail (the test can fail).
# SKR_MAN_DIR overrides docs/man (to try the test on edited copies).
. "$(dirname "$0")/lib.sh"

MAN_DIR=${SKR_MAN_DIR:-${SKR_SRC_DIR:?}/docs/man}
BIN=$SKR_BUILD_DIR/src
# skr commands whose man page is still being written. Each is printed as "# pending" instead
# of failing; a command listed here that has a page fails the test: remove it from the list.
PENDING_PAGES=""
HAVE_GROFF=0
command -v groff >/dev/null 2>&1 && HAVE_GROFF=1

is_pending() {
    case " $PENDING_PAGES " in *" $1 "*) return 0 ;; esac
    return 1
}

# roff_text PAGE: the page's text with comments, font changes and escapes removed (\- is -).
roff_text() {
    sed -e '/^[.'\'']\\"/d' -e 's/\\".*//' -e 's/\\-/-/g' -e 's/\\f\[[^]]*\]//g' \
        -e 's/\\f(..//g' -e 's/\\f.//g' -e 's/\\(dq/"/g' -e 's/\\(..//g' -e 's/\\[&%:c]//g' \
        -e 's/\\e/\\/g' "$1"
}

# opts_of FILE: the options FILE mentions, one per line, sorted.
opts_of() {
    grep -oE -- '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9_-]*' "$1" | sed -E 's/^[^-]//; s/-+$//' |
        grep -vxE -- '-[A-Za-z]|--?(help|version)' | LC_ALL=C sort -u
}

# defined_opts HELP: the options HELP defines: those of its usage block (up to the first
# blank line) and those that start a line.
defined_opts() {
    {
        sed -n '1,/^$/p' "$1"
        sed -nE 's/^[[:space:]]*(-[A-Za-z], )?(--?[A-Za-z][A-Za-z0-9_-]*).*/\2/p' "$1"
    } >"$1.def"
    opts_of "$1.def"
}

# help_cmds PAGE: the page's help: command lines.
help_cmds() {
    sed -n 's/^\.\\" help: *//p' "$1"
}

# run_help OUT "CMD ARGS": runs one help command line; 0 when it exits 0 with some output.
run_help() {
    _out=$1
    set -f
    # shellcheck disable=SC2086
    set -- $2
    set +f
    case "$1" in
    skr | skrd | skr-emu) _prog="$BIN/$1" ;;
    *) return 1 ;;
    esac
    shift
    "$_prog" "$@" >"$_out" 2>"$_out.err" </dev/null && [ -s "$_out" ]
}

# report_diff WANT GOT MESSAGE: one "#   --opt MESSAGE" line per option in WANT but not GOT.
report_diff() {
    LC_ALL=C comm -23 "$1" "$2" | sed "s/^/#   /; s/\$/ $3/"
    [ -z "$(LC_ALL=C comm -23 "$1" "$2")" ]
}

# check_page PAGE: every per-page check; ok/not_ok lines.
check_page() {
    _page=$1
    _base=$(basename "$_page")
    _d="$TMP/p/$_base"
    rm -rf "$_d"
    mkdir -p "$_d"

    # help: lines, the help texts
    if sed -n 2p "$_page" | grep -q '^\.\\" help: '; then
        ok "$_base: help: comment on line 2"
    else
        not_ok "$_base: no '.\\\" help: CMD --help' comment on line 2"
    fi
    help_cmds "$_page" >"$_d/cmds"
    : >"$_d/help"
    : >"$_d/defined"
    _i=0
    while IFS= read -r _cmd; do
        _i=$((_i + 1))
        if run_help "$_d/h$_i" "$_cmd"; then
            ok "$_base: '$_cmd' prints its help"
            cat "$_d/h$_i" >>"$_d/help"
            defined_opts "$_d/h$_i" >>"$_d/defined"
        else
            not_ok "$_base: '$_cmd' failed or printed nothing (help: lines name skr, skrd or skr-emu)"
            sed 's/^/#   /' "$_d/h$_i.err" 2>/dev/null | head -5
        fi
    done <"$_d/cmds"
    [ "$_i" -gt 0 ] || not_ok "$_base: no help: line at all"

    # .TH and sections
    _th=$(sed -n 's/^\.TH  *"*\([^ "]*\)"*  *\([^ ]*\).*/\1.\2/p' "$_page" | head -1 |
        sed 's/\\-/-/g' | tr '[:upper:]' '[:lower:]')
    if [ "$_th" = "$_base" ]; then
        ok "$_base: .TH names the page"
    else
        not_ok "$_base: .TH says '$_th', the file is $_base"
    fi
    _sections="NAME SYNOPSIS DESCRIPTION EXIT_STATUS SEE_ALSO"
    roff_text "$_page" >"$_d/text"
    opts_of "$_d/help" >"$_d/help.opts"
    [ -s "$_d/help.opts" ] && _sections="$_sections OPTIONS"
    grep -oE '(SKR|UVM|AZURE)_[A-Z0-9_]+' "$_d/help" | LC_ALL=C sort -u >"$_d/help.vars"
    [ -s "$_d/help.vars" ] && _sections="$_sections ENVIRONMENT"
    _missing=""
    for _s in $_sections; do
        _s=$(echo "$_s" | tr _ ' ')
        sed 's/"//g' "$_page" | grep -qx "\\.SH $_s" || _missing="$_missing '$_s'"
    done
    if [ -z "$_missing" ]; then
        ok "$_base: has the sections $(echo "$_sections" | sed 's/ /, /g' | tr _ ' ')"
    else
        not_ok "$_base: no section$_missing"
    fi
    if awk '/^\.SH NAME/ {getline; print; exit}' "$_page" | grep -q ' \\- '; then
        ok "$_base: NAME is 'name \\- what it does'"
    else
        not_ok "$_base: the line after .SH NAME is not 'name \\- what it does'"
    fi

    # rendering
    if [ "$HAVE_GROFF" = 1 ]; then
        if groff -man -Tutf8 -ww -z "$_page" >"$_d/groff" 2>&1 && [ ! -s "$_d/groff" ]; then
            ok "$_base: groff renders it without warnings"
        else
            not_ok "$_base: groff warns"
            sed 's/^/#   /' "$_d/groff" | head -10
        fi
    else
        ok "$_base: renders without groff warnings # SKIP groff is not installed"
    fi

    # options, both ways
    opts_of "$_d/text" >"$_d/page.opts"
    if report_diff "$_d/help.opts" "$_d/page.opts" "is in --help but not in $_base"; then
        ok "$_base: mentions every option of its help ($(wc -l <"$_d/help.opts"))"
    else
        not_ok "$_base: options of --help missing from the page"
    fi
    if report_diff "$_d/page.opts" "$_d/help.opts" "is in $_base but not in --help"; then
        ok "$_base: mentions no option its help lacks"
    else
        not_ok "$_base: options in the page that --help does not list"
    fi
    grep -oE '(SKR|UVM|AZURE)_[A-Z0-9_]+' "$_d/text" | LC_ALL=C sort -u >"$_d/page.vars"
    if report_diff "$_d/help.vars" "$_d/page.vars" "is in --help but not in $_base"; then
        ok "$_base: names every environment variable of its help ($(wc -l <"$_d/help.vars"))"
    else
        not_ok "$_base: environment variables of --help missing from the page"
    fi
    awk '/^\.TP/ {t = 1; next} t {print; t = 0}' "$_d/text" >"$_d/tags"
    opts_of "$_d/tags" >"$_d/tag.opts"
    LC_ALL=C sort -u "$_d/defined" >"$_d/defined.opts"
    if report_diff "$_d/defined.opts" "$_d/tag.opts" "has no .TP entry in $_base"; then
        ok "$_base: every option the help defines has an entry ($(wc -l <"$_d/defined.opts"))"
    else
        not_ok "$_base: options without a .TP entry"
    fi

    # references and installation
    _bad=""
    for _ref in $(grep -oE '(^|[^A-Za-z0-9_.-])skr[a-z0-9-]* ?\([1-8]\)' "$_d/text" |
        sed -E 's/^[^s]//; s/ //; s/\(([1-8])\)/.\1/' | LC_ALL=C sort -u); do
        [ -f "$MAN_DIR/$_ref" ] && continue
        case "$_ref" in
        skr-*.1)
            _sub=${_ref#skr-}
            if is_pending "${_sub%.1}"; then
                continue
            fi
            ;;
        esac
        _bad="$_bad $_ref"
    done
    if [ -z "$_bad" ]; then
        ok "$_base: every page it refers to exists"
    else
        not_ok "$_base: refers to missing pages:$_bad"
    fi
    if grep -qF "'man/$_base'" "$SKR_SRC_DIR/docs/meson.build"; then
        ok "$_base: installed by docs/meson.build"
    else
        not_ok "$_base: not in docs/meson.build's install_man"
    fi
}

# check_commands DIR: the cross-page checks on the pages of DIR.
check_commands() {
    _dir=$1
    : >"$TMP/helpmap"
    for _p in "$_dir"/*.[18]; do
        help_cmds "$_p" | sed "s|^|$(basename "$_p") |" >>"$TMP/helpmap"
    done
    "$BIN/skr" --help | sed -n '/^commands:/,/^$/p' |
        sed -nE 's/^  ([a-z][a-z-]*( [a-z][a-z-]*)?)  .*/\1/p' >"$TMP/commands"
    if [ -s "$TMP/commands" ]; then
        ok "skr --help lists $(wc -l <"$TMP/commands") commands"
    else
        not_ok "no commands found in skr --help"
    fi
    roff_text "$_dir/skr.1" 2>/dev/null |
        awk '/^\.TP/ {t = 1; next} t {print; t = 0}' |
        sed -E 's/^\.[A-Z]+ //; s/"//g; s/  +/ /g' >"$TMP/skr1.tags"
    _pending_seen=""
    while IFS= read -r _c; do
        if grep -qE "^skr $_c( |\$)" "$TMP/skr1.tags"; then
            ok "skr.1 lists 'skr $_c'"
        else
            not_ok "skr.1 has no .TP entry 'skr $_c'"
        fi
        _w=${_c%% *}
        [ "$_w" = version ] && continue
        _pg=$(awk -v w="$_w" '$2 == "skr" && $3 == w {print $1; exit}' "$TMP/helpmap")
        if is_pending "$_w"; then
            if [ -n "$_pg" ]; then
                not_ok "'skr $_w' has a page now ($_pg): remove $_w from PENDING_PAGES"
            else
                case " $_pending_seen " in
                *" $_w "*) ;;
                *) echo "# pending: no man page for 'skr $_w' yet (PENDING_PAGES in $0)" ;;
                esac
                _pending_seen="$_pending_seen $_w"
            fi
            continue
        fi
        if [ -z "$_pg" ]; then
            not_ok "no page documents 'skr $_c' (a help: line 'skr $_w ...' in docs/man)"
        elif roff_text "$_dir/$_pg" | grep -qF "skr $_c"; then
            ok "$_pg documents 'skr $_c'"
        else
            not_ok "$_pg documents 'skr $_w' but never names 'skr $_c'"
        fi
    done <"$TMP/commands"
    for _w in $PENDING_PAGES; do
        grep -qE "^$_w( |\$)" "$TMP/commands" ||
            not_ok "PENDING_PAGES names '$_w', which skr --help does not list"
    done
    grep -oE '"(skr|skrd|skr-emu) [^"]*--help"' "$SKR_SRC_DIR/scripts/gen-cli-doc" |
        tr -d '"' >"$TMP/gen.cmds"
    while IFS= read -r _c; do
        _w=$(echo "$_c" | awk '$1 == "skr" && $2 != "--help" {print $2}')
        if awk -v c="$_c" 'substr($0, index($0, " ") + 1) == c {f = 1} END {exit !f}' \
            "$TMP/helpmap"; then
            ok "a page documents '$_c' (scripts/gen-cli-doc)"
        elif [ -n "$_w" ] && is_pending "$_w"; then
            : # reported as pending above
        else
            not_ok "no page has the help: line '$_c' that scripts/gen-cli-doc documents"
        fi
    done <"$TMP/gen.cmds"
    for _p in "$_dir"/*.[18]; do
        _b=$(basename "$_p")
        [ "$_b" = skr.1 ] && continue
        if roff_text "$_dir/skr.1" | grep -qE "(^|[^a-z-])${_b%.*} ?\(${_b##*.}\)"; then
            ok "skr.1 refers to ${_b%.*}(${_b##*.})"
        else
            not_ok "skr.1 does not refer to ${_b%.*}(${_b##*.})"
        fi
    done
}

# ---- the checks can fail: broken copies of a page -------------------------------------------
NEG="$TMP/neg"
mkdir -p "$NEG"
# expect_fail DESC PATTERN PAGE: check_page on PAGE reports a failure matching PATTERN.
expect_fail() {
    (
        # shellcheck disable=SC2034 # lib.sh's counters, private to this subshell
        N=0 FAILS=0
        check_page "$3"
    ) >"$TMP/neg.out" 2>&1
    if grep -q '^not ok' "$TMP/neg.out" && grep -qE -- "$2" "$TMP/neg.out"; then
        ok "a broken page fails: $1"
    else
        not_ok "a broken page passes: $1 (no '$2')"
        sed 's/^/#   /' "$TMP/neg.out" | grep -v '^#   ok' | head -10
    fi
}
# A small complete page for `skr encrypt`: it passes, and each broken copy fails as it should.
cat >"$NEG/skr-encrypt.1.good" <<'EOF'
.\" fixture of test_man.sh
.\" help: skr encrypt --help
.TH SKR-ENCRYPT 1 2026-11 "skr" "skr manual"
.SH NAME
skr\-encrypt \- encrypt data with a released key
.SH SYNOPSIS
.B skr encrypt \-\-key
.I JWK
.RB [ \-\-in
.IR FILE ]
.RB [ \-\-out
.IR FILE ]
.RB [ \-\-aad
.IR TEXT ]
.SH DESCRIPTION
Encrypts data.
.SH OPTIONS
.TP
.BI \-\-key " JWK"
The key.
.TP
.BI \-\-in " FILE"
The input.
.TP
.BI \-\-out " FILE"
The output.
.TP
.BI \-\-aad " TEXT"
Associated data.
.SH EXIT STATUS
0 ok, 2 bad usage or input, 3 I/O error.
.SH SEE ALSO
.BR skr (1)
EOF
GOOD="$NEG/skr-encrypt.1.good"
BAD="$NEG/skr-encrypt.1"
cp "$GOOD" "$BAD"
(
    # shellcheck disable=SC2034 # lib.sh's counters, private to this subshell
    N=0 FAILS=0
    check_page "$BAD"
) >"$TMP/neg.out" 2>&1
if grep -q '^not ok' "$TMP/neg.out"; then
    not_ok "the fixture page fails"
    grep '^not ok\|^#' "$TMP/neg.out" | sed 's/^/#   /' | head -10
else
    ok "the fixture page passes every check ($(grep -c '^ok' "$TMP/neg.out"))"
fi
sed '/aad/d' "$GOOD" >"$BAD"
expect_fail "an option missing from the page is named" '--aad is in --help but not in' "$BAD"
sed 's/^\.SH EXIT STATUS$/.TP\n.B \\-\\-frobnicate\nNot an option.\n&/' "$GOOD" >"$BAD"
expect_fail "an option --help lacks is named" '--frobnicate is in skr-encrypt.1 but not in --help' \
    "$BAD"
sed '/^\.BI \\-\\-aad/d' "$GOOD" >"$BAD"
expect_fail "an option without a .TP entry is named" '--aad has no .TP entry' "$BAD"
sed '/help:/d' "$GOOD" >"$BAD"
expect_fail "a page without help: line" 'no help: line' "$BAD"
sed 's/help: skr encrypt --help/help: skr encrypt --no-such-option/' "$GOOD" >"$BAD"
expect_fail "a help: line that fails" 'failed or printed nothing' "$BAD"
sed '/^\.SH EXIT STATUS$/d' "$GOOD" >"$BAD"
expect_fail "a missing section" "no section 'EXIT STATUS'" "$BAD"
sed 's/^\.BR skr (1)$/.BR skr\\-nosuch (1)/' "$GOOD" >"$BAD"
expect_fail "a reference to a missing page" 'refers to missing pages: skr-nosuch.1' "$BAD"
sed 's/^\.TH SKR-ENCRYPT/.TH SKR-DECRYPT/' "$GOOD" >"$BAD"
expect_fail "a .TH that does not name the file" "TH says 'skr-decrypt.1'" "$BAD"
sed 's/help: skr encrypt --help/help: skr report --help/' "$GOOD" >"$BAD"
expect_fail "a variable of the help missing from the page is named" \
    'SKR_SNP_DEVICE is in --help but not in skr-encrypt.1' "$BAD"
if [ "$HAVE_GROFF" = 1 ]; then
    sed 's/^Encrypts data\.$/&\n.XY unknown macro\nan\\-unbreakable\\-word\\-longer\\-than\\-any\\-line\\-of\\-a\\-terminal\\-can\\-hold\\-at\\-all/' \
        "$GOOD" >"$BAD"
    expect_fail "groff warnings" 'groff warns' "$BAD"
fi
# a command without a page: the cross-page check on a copy without skr-report.1
mkdir -p "$NEG/dir"
cp "$MAN_DIR"/*.[18] "$NEG/dir/"
rm -f "$NEG/dir/skr-report.1"
(
    # shellcheck disable=SC2034 # lib.sh's counters, private to this subshell
    N=0 FAILS=0
    check_commands "$NEG/dir"
) >"$TMP/neg.out" 2>&1
if grep -q "^not ok.*no page documents 'skr report fetch'" "$TMP/neg.out" &&
    grep -q "^not ok.*no page has the help: line 'skr report --help'" "$TMP/neg.out"; then
    ok "a command without a page fails"
else
    not_ok "a command without a page passes"
    sed 's/^/#   /' "$TMP/neg.out" | grep -v '^#   ok' | head -10
fi

# ---- the pages ---------------------------------------------------------------------------------
npages=0
for page in "$MAN_DIR"/*.[18]; do
    [ -f "$page" ] || continue
    npages=$((npages + 1))
    check_page "$page"
done
if [ "$npages" -ge 7 ]; then
    ok "$npages man pages in $MAN_DIR"
else
    not_ok "only $npages man pages in $MAN_DIR"
fi
check_commands "$MAN_DIR"
finish
