# Helpers of tests/slurm/up.sh and down.sh (sourced): finding and stopping the daemons.
# The caller defines log().

# Whether pid is a live (not zombie) process named name. The double fork of the daemons
# leaves zombies that init may take a second or two to reap.
alive() {
    local pid=$1 name=$2 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# Pids of a running daemon: the one in its pid file if alive, else any live process of that
# exact name (e.g. one started with another pid file).
daemon_pids() {
    local name=$1 pidfile=$2 pid
    if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && alive "$pid" "$name"; then
            echo "$pid"
            return 0
        fi
    fi
    for pid in $(pgrep -x "$name" || true); do
        alive "$pid" "$name" && echo "$pid"
    done
    return 0
}

# TERM the daemon(s) of that name, wait until none is left (KILL after 15 s).
stop_daemon() {
    local name=$1 pidfile=$2 pids i
    pids=$(daemon_pids "$name" "$pidfile")
    if [ -z "$pids" ]; then
        return 0
    fi
    log "stopping $name ($(echo $pids))"
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 150); do
        pids=$(daemon_pids "$name" /dev/null)
        [ -z "$pids" ] && return 0
        sleep 0.1
    done
    log "$name still there after 15 s; killing $(echo $pids)"
    kill -KILL $pids 2>/dev/null || true
    for i in $(seq 50); do
        [ -z "$(daemon_pids "$name" /dev/null)" ] && return 0
        sleep 0.1
    done
    echo "slurm down: error: $name does not go away" >&2
    return 1
}
