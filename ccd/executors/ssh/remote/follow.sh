#!/bin/sh
# ccd's follower on a remote host without python3: POSIX sh and standard tools.
#
# The same commands and frames as follow.py (see ccd/executors/ssh/frames.py), but
# no event source: every <tick> seconds one `wc -c` gives the size of every
# followed log, `[ -s exit ]` (a built-in test) finds the exit files, and only a
# log that grew costs a `tail | head`.  Every <live> ticks the wrappers' pids are
# checked with the built-in `kill -0`.
#
# Three processes: this loop; a reader that turns each command on stdin into a
# small file in the state directory (sh cannot wait on stdin and a timer at once);
# a watchdog that ends all three when ccd has sent nothing for <dog> seconds (a
# connection that died without closing) and removes the state directory.  Only
# this loop holds stdout and stderr: when it dies, ccd sees the channel end.
#
#   sh follow.sh <tick> <beat> <live> <dog> <state parent>
#
# `head -c` is not in POSIX, but GNU, BusyBox and the BSDs all have it.

LC_ALL=C
export LC_ALL
tick=$1 beat=$2 live=$3 dog=$4
st=$5/s.$$
mkdir -p "$st" || exit 1
: > "$st/alive"
exec 3<&0

# the reader: one file per command, each written by one write(2) of a short line
(
    while IFS=' ' read -r c a b m p d <&3; do
        : > "$st/alive"
        case $c in
            A) printf '%s %s %s %s\n' "$b" "$m" "$p" "$d" > "$st/w.$a" ;;
            D) : > "$st/d.$a" ;;
            F) : > "$st/f.$a.$b" ;;
        esac
    done
    kill -TERM $$ 2>/dev/null
) > /dev/null 2>&1 &
reader=$!

# the watchdog: `alive` must have been touched since its last look
(
    while sleep "$dog"; do
        [ -e "$st/alive" ] || break
        rm -f "$st/alive"
    done
    kill -KILL $$ "$reader" 2>/dev/null
    rm -rf "$st"
) > /dev/null 2>&1 &
watchdog=$!

trap 'kill "$reader" "$watchdog" 2>/dev/null; rm -rf "$st"' EXIT
trap 'exit 0' TERM INT HUP PIPE

printf 'R sh %s 1\nE follower %s: polling every %ss\n' $$ $$ "$tick"

# send <id>'s log bytes from its offset to <size>
send_log() {
    eval "o=\$o_$1 d=\$d_$1"
    n=$(($2 - o))
    [ "$n" -gt 0 ] || return 0
    [ "$n" -le 1048576 ] || n=1048576
    printf 'L %s %s %s\n' "$1" "$o" "$n"
    tail -c +$((o + 1)) "$d/log" | head -c "$n"
    eval "o_$1=$((o + n))"
}

# the log's size now (after its exit file was seen: the last bytes count)
size_now() {
    s=$(wc -c < "$1/log" 2>/dev/null) || s=0
    echo $((s + 0))
}

# forget <id> (the files go at the end of the tick, in one rm)
forget() {
    eval "unset d_$1 o_$1 m_$1 p_$1"
    gone="$gone w.$1 d.$1"
}

n_tick=0
while :; do
    n_tick=$((n_tick + 1))
    gone=
    flushes=
    for f in "$st"/f.*; do
        [ -e "$f" ] && flushes="$flushes ${f##*/}"
    done
    # the followed ids, and their logs for one wc
    ids=
    set --
    for f in "$st"/w.*; do
        [ -e "$f" ] || continue
        id=${f##*/w.}
        if [ -e "$st/d.$id" ]; then
            forget "$id"
            continue
        fi
        eval "d=\${d_$id-}"
        if [ -z "$d" ]; then
            IFS=' ' read -r off mode pid d < "$f"
            [ -n "$d" ] || continue # being written
            eval "o_$id=\$off m_$id=\$mode p_$id=\$pid d_$id=\$d"
        fi
        ids="$ids $id"
        set -- "$@" "$d/log"
    done
    if [ -n "$ids" ]; then
        wc -c "$@" > "$st/sizes" 2>/dev/null
        exec 4< "$st/sizes"
        IFS=' ' read -r size path <&4 || path=
        check_live=
        [ $((n_tick % live)) -eq 0 ] && check_live=1
        for id in $ids; do
            eval "d=\$d_$id mode=\$m_$id pid=\$p_$id"
            s=0
            if [ "$path" = "$d/log" ]; then
                s=$size
                IFS=' ' read -r size path <&4 || path=
            fi
            ex=
            if [ "$mode" = l ]; then
                [ -s "$d/exit" ] && read -r ex < "$d/exit"
                if [ -z "$ex" ] && [ -n "$check_live" ] && [ "$pid" -gt 0 ] &&
                    ! kill -0 "$pid" 2>/dev/null; then
                    [ -s "$d/exit" ] && read -r ex < "$d/exit"
                    if [ -z "$ex" ]; then
                        send_log "$id" "$(size_now "$d")"
                        printf 'G %s\n' "$id"
                        forget "$id"
                        continue
                    fi
                fi
                [ -n "$ex" ] && s=$(size_now "$d")
            fi
            send_log "$id" "$s"
            if [ -n "$ex" ]; then
                t=$(date -r "$d/exit" +%s 2>/dev/null) || t=$(date +%s)
                printf 'X %s %s %s\n%s' "$id" "$t" ${#ex} "$ex"
                forget "$id"
            fi
        done
        exec 4<&-
    fi
    for f in $flushes; do
        t=${f#f.}
        printf 'F %s\n' "${t%%.*}"
        gone="$gone $f"
    done
    [ $((n_tick % beat)) -eq 0 ] && printf 'H\n'
    [ -n "$gone" ] && (cd "$st" && rm -f $gone)
    sleep "$tick" 2>/dev/null || sleep 1
done
