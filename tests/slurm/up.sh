#!/usr/bin/env bash
# Bring up a real one-node Slurm cluster on this machine (ClusterName=cnnbench): munged,
# slurmctld and slurmd, all daemonized, no systemd needed. Idempotent: what already runs is
# left running (restarted only when the generated slurm.conf changed), so running it twice
# is harmless. Tear it down with tests/slurm/down.sh.
#
#   sudo tests/slurm/up.sh        # last line: "slurm up: node <host> idle, partition debug (...)"
#
# Needs root and Debian's packages: apt-get install slurm-wlm munge
# Environment:
#   CNNBENCH_SLURM_DIR      state, spool, pid and log files (default /var/lib/cnnbench-slurm)
#   CNNBENCH_SLURM_TIMEOUT  seconds to wait for the node to become usable (default 60)
# The config goes where Debian's Slurm tools look by default: /etc/slurm/slurm.conf.
set -euo pipefail

t0=$(date +%s.%N)
DIR=${CNNBENCH_SLURM_DIR:-/var/lib/cnnbench-slurm}
TIMEOUT=${CNNBENCH_SLURM_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
PARTITION=debug
MARK="# Written by cnnbench tests/slurm/up.sh; rewritten by each run, edits are lost."

log() { echo "slurm up: $*"; }
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }
show_logs() {
    local f
    for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" /var/log/munge/munged.log; do
        [ -f "$f" ] || continue
        echo "----- tail of $f -----" >&2
        tail -n 30 "$f" >&2
    done
}
die() {
    echo "slurm up: error: $*" >&2
    show_logs
    echo "slurm up: failed after $(elapsed)" >&2
    exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/daemons.sh"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
    echo "slurm up: error: Slurm or munge is not installed; run: apt-get install slurm-wlm munge" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "slurm up: error: must run as root (e.g. sudo $0)" >&2
    exit 1
fi
if [ -n "${SLURM_CONF:-}" ] && [ "$SLURM_CONF" != "$CONF" ]; then
    log "warning: SLURM_CONF=$SLURM_CONF is set; this cluster's config is $CONF"
fi
export SLURM_CONF=$CONF

# ---------------------------------------------------------------- munge
id munge >/dev/null 2>&1 || die "no 'munge' user (is the munge package installed?)"
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
KEY=/etc/munge/munge.key
if [ ! -s "$KEY" ]; then
    log "creating munge key $KEY"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$KEY" --force
    else
        dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
    fi
fi
chown munge:munge "$KEY"
chmod 0400 "$KEY"
if [ -z "$(daemon_pids munged /run/munge/munged.pid)" ]; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
fi
for i in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.2
done
munge -n | unmunge >/dev/null || die "munge -n | unmunge fails"

# ---------------------------------------------------------------- slurm.conf
HOST=$(hostname -s)
[ -n "$HOST" ] || die "hostname -s is empty"
# The hardware as slurmd sees it, e.g.
#   NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
HW=$(slurmd -C 2>/dev/null | head -n 1 | sed -E 's/^NodeName=[^ ]+ ?//') || true
CPUS=$(sed -nE 's/.*CPUs=([0-9]+).*/\1/p' <<<"$HW")
MEM=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$HW")
if [ -z "$CPUS" ] || [ -z "$MEM" ]; then
    CPUS=$(nproc)
    MEM=$(free -m | awk '/^Mem:/ { print $2 }')
    HW="CPUs=$CPUS RealMemory=$MEM"
fi
# Without a default, a job that asks no memory gets the whole node's and runs alone.
DEFMEM=$((MEM / CPUS))

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /etc/slurm
chmod 0755 "$DIR" "$DIR/spool" "$DIR/log"
chmod 0700 "$DIR/state"

# The node and controller address is pinned to 127.0.0.1, so nothing depends on how (or
# whether) the hostname resolves.
NEW=$(cat <<EOF
$MARK
ClusterName=cnnbench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$DEFMEM
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST $HW State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then
    if [ -f "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
        log "saving the existing $CONF as $CONF.orig"
        cp -p "$CONF" "$CONF.orig"
    fi
    printf '%s\n' "$NEW" >"$CONF.tmp"
    chmod 0644 "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
    log "wrote $CONF"
    changed=1
fi

# ---------------------------------------------------------------- daemons
if [ "$changed" = 1 ]; then
    # Daemons running with another config: restart them on this one.
    stop_daemon slurmd "$DIR/slurmd.pid" || die "slurmd does not stop"
    stop_daemon slurmctld "$DIR/slurmctld.pid" || die "slurmctld does not stop"
fi
if [ -z "$(daemon_pids slurmctld "$DIR/slurmctld.pid")" ]; then
    log "starting slurmctld"
    slurmctld || die "slurmctld did not start"
fi
if [ -z "$(daemon_pids slurmd "$DIR/slurmd.pid")" ]; then
    log "starting slurmd"
    slurmd || die "slurmd did not start"
fi

# ---------------------------------------------------------------- wait for the node
deadline=$(($(date +%s) + TIMEOUT))
last_resume=0
state=""
while :; do
    [ -n "$(daemon_pids slurmctld "$DIR/slurmctld.pid")" ] || die "slurmctld exited"
    [ -n "$(daemon_pids slurmd "$DIR/slurmd.pid")" ] || die "slurmd exited"
    line=$(timeout 10 scontrol -o show node "$HOST" 2>/dev/null || true)
    state=$(sed -nE 's/.* State=([^ ]+).*/\1/p' <<<"$line")
    base=${state%%+*}
    case "+$state+" in
        *+DRAIN+* | *+FAIL+* | *+NOT_RESPONDING+* | *+POWER*) ready=0 ;;
        *) case "$base" in IDLE | MIXED | ALLOCATED) ready=1 ;; *) ready=0 ;; esac ;;
    esac
    # slurmctld answered; the local slurmd must answer too (the node's state alone can be a
    # leftover of the saved state, from before slurmd was restarted).
    if [ "$ready" = 1 ]; then
        timeout 5 scontrol show slurmd >/dev/null 2>&1 && break
        state="$state, but slurmd does not answer"
    fi
    now=$(date +%s)
    # A node left DOWN or DRAINED (e.g. by an earlier run's crash) but talking to slurmctld:
    # put it back in service.
    if [ -n "$state" ] && [ $((now - last_resume)) -ge 5 ]; then
        case "+$state+" in
            *+NOT_RESPONDING+*) ;;
            *+DRAIN+* | +DOWN+* | *+FAIL+*)
                reason=$(sed -nE 's/.* Reason=(.*)$/\1/p' <<<"$line")
                log "node $HOST is $state (${reason:-no reason}); resuming it"
                scontrol update nodename="$HOST" state=resume || true
                last_resume=$now
                ;;
        esac
    fi
    if [ "$now" -ge "$deadline" ]; then
        echo "slurm up: error: node $HOST not usable after ${TIMEOUT} s: ${state:-slurmctld not answering}" >&2
        [ -n "$line" ] && echo "$line" >&2
        die "timed out"
    fi
    sleep 0.5
done

pstate=$(scontrol -o show partition "$PARTITION" 2>/dev/null | sed -nE 's/.* State=([^ ]+).*/\1/p')
[ "$pstate" = UP ] || die "partition $PARTITION is ${pstate:-missing}, not UP"
log "node $HOST $(tr '[:upper:]' '[:lower:]' <<<"$base"), partition $PARTITION ($HW; took $(elapsed))"
