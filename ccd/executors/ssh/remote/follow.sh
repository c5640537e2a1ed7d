#!/bin/sh
# ccd's follower on a remote host without python3: POSIX sh and standard tools.
#
# The same commands and frames as follow.py (see ccd/executors/ssh/frames.py), but
# no event source: every <tick> seconds one `wc -c` lists the size of every
# followed log and exit file (through a link to each run directory, named by its
# id, in the state directory), one `diff` against the last tick's list says which
# changed, and only those cost more: a `tail | head` for a log that grew, a read
# of a new exit file.  Every <live> ticks the wrappers' pids are checked with the
# built-in `kill -0`.  Nothing is done per followed directory on a quiet tick.
#
# Three processes: this loop; a reader that turns each command on stdin into
# small files in the state directory (sh cannot wait on stdin and a timer at
# once); a watchdog that ends all three when ccd has sent nothing for <dog>
# seconds (a connection that died without closing) and removes the state
# directory.  Only this loop holds stdout and stderr: when it dies, ccd sees the
# channel end.
#
#   sh follow.sh <tick> <beat> <live> <dog> <state parent>
#
# `head -c` is not in POSIX, but GNU, BusyBox and the BSDs all have it.

LC_ALL=C
export LC_ALL
tick=$1 beat=$2 live=$3 dog=$4
st=$5/s.$(uname -n).$$ # a home shared by login nodes: one per machine and process
mkdir -p "$st/w" "$st/r" "$st/q" || exit 1
: > "$st/alive"
: > "$st/sizes.0"
exec 3<&0

# the reader: w/ID holds "offset mode pid dir", r/ID links to the run directory,
# q/n.ID says "new", q/d.ID "dropped", q/f.TOKEN.ID "flush"; each written by one
# write(2).  The queue has a directory of its own: a tick looks at it three times.
(
    while IFS=' ' read -r c a b m p d <&3; do
        : > "$st/alive"
        case $c in
            A)
                printf '%s %s %s %s\n' "$b" "$m" "$p" "$d" > "$st/w/$a"
                ln -s "$d" "$st/r/$a"
                : > "$st/q/n.$a"
                ;;
            D) : > "$st/q/d.$a" ;;
            F) : > "$st/q/f.$a.$b" ;;
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

# send <id>'s log bytes from its offset up to <size>, in frames of at most 1 MiB
send_log() {
    eval "o=\$o_$1 d=\$d_$1"
    while [ "$o" -lt "$2" ]; do
        n=$(($2 - o))
        [ "$n" -le 1048576 ] || n=1048576
        printf 'L %s %s %s\n' "$1" "$o" "$n"
        tail -c +$((o + 1)) "$d/log" | head -c "$n"
        o=$((o + n))
    done
    eval "o_$1=\$o"
}

# the log's size now (after its exit file was seen: its last bytes count)
size_now() {
    s=$(wc -c < "$1/log" 2>/dev/null) || s=0
    echo $((s + 0))
}

# the wrapper wrote its exit file: the log to its end, then the exit frame;
# <size> and <time> when the tick's listing gives them (else one fork each)
ended() {
    eval "d=\$d_$1"
    read -r ex < "$d/exit" || [ -n "$ex" ] || return 0
    send_log "$1" "${2:-$(size_now "$d")}"
    t=${3:-$(date -r "$d/exit" +%s 2>/dev/null || date +%s)}
    printf 'X %s %s %s\n%s' "$1" "$t" ${#ex} "$ex"
    forget "$1"
}

# forget <id> (its files go at the end of the tick, in one rm)
forget() {
    eval "unset d_$1 o_$1 m_$1 p_$1 s_$1"
    gone="$gone w/$1 r/$1 q/d.$1"
}

known() {
    eval "[ -n \"\${d_$1-}\" ]"
}

n_tick=0
cur=0
while :; do
    n_tick=$((n_tick + 1))
    gone=
    flushes=
    for f in "$st"/q/f.*; do
        [ -e "$f" ] && flushes="$flushes ${f##*/}"
    done
    for f in "$st"/q/n.*; do
        [ -e "$f" ] || continue
        id=${f##*/n.}
        gone="$gone q/n.$id"
        IFS=' ' read -r off mode pid d < "$st/w/$id" && [ -n "$d" ] || continue
        eval "o_$id=\$off m_$id=\$mode p_$id=\$pid d_$id=\$d"
    done
    for f in "$st"/q/d.*; do
        [ -e "$f" ] || continue
        id=${f##*/d.}
        forget "$id"
    done
    # what changed since the last tick: lines of `wc -c` that differ.  Exit files
    # first: a log measured after its exit file was seen holds all the job wrote
    next=$((1 - cur))
    wc -c "$st"/r/*/exit "$st"/r/*/log > "$st/sizes.$next" 2>/dev/null
    diff "$st/sizes.$cur" "$st/sizes.$next" > "$st/changes" 2>/dev/null
    cur=$next
    exits=
    while IFS=' ' read -r mark size path; do
        [ "$mark" = ">" ] || continue
        case $path in
            "$st"/r/*/log) file=log ;;
            "$st"/r/*/exit) file=exit ;;
            *) continue ;;
        esac
        id=${path#"$st"/r/}
        id=${id%/*}
        known "$id" || continue
        eval "mode=\$m_$id"
        if [ "$file" = exit ]; then
            [ "$mode" = l ] && [ "$size" -gt 0 ] && exits="$exits $id"
        else
            eval "s_$id=\$size"
            send_log "$id" "$size"
        fi
    done < "$st/changes"
    if [ -n "$exits" ]; then
        # a tick's time for exits seen as they came; the files' own on the first
        # tick, which may find exits written while no follower ran
        now=
        [ "$n_tick" -gt 1 ] && now=$(date +%s)
        for id in $exits; do
            eval "size=\${s_$id-0}"
            ended "$id" "$size" "$now"
        done
    fi
    if [ $((n_tick % live)) -eq 0 ]; then
        for f in "$st"/w/*; do
            [ -e "$f" ] || continue
            id=${f##*/}
            known "$id" || continue
            eval "mode=\$m_$id pid=\$p_$id d=\$d_$id"
            [ "$mode" = l ] && [ "$pid" -gt 0 ] || continue
            kill -0 "$pid" && continue
            if [ -s "$d/exit" ]; then
                ended "$id"
            else
                send_log "$id" "$(size_now "$d")"
                printf 'G %s\n' "$id"
                forget "$id"
            fi
        done 2>/dev/null # kill's complaints, once for the loop and not per pid
    fi
    for f in $flushes; do
        t=${f#f.}
        id=${t#*.}
        # a flush answers for what was there when it was asked: look at that one now
        if known "$id"; then
            eval "mode=\$m_$id d=\$d_$id"
            if [ "$mode" = l ] && [ -s "$d/exit" ]; then
                ended "$id"
            else
                send_log "$id" "$(size_now "$d")"
            fi
        fi
        printf 'F %s\n' "${t%%.*}"
        gone="$gone q/$f"
    done
    [ $((n_tick % beat)) -eq 0 ] && printf 'H\n'
    [ -n "$gone" ] && (cd "$st" && rm -f $gone)
    sleep "$tick" 2>/dev/null || sleep 1
done
