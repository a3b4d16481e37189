#!/usr/bin/env bash
# Tear down the one-node Slurm cluster of tests/slurm/up.sh: cancel its jobs, stop slurmd,
# slurmctld and munged, and wait until they are gone. Idempotent: harmless when nothing runs.
#
#   sudo tests/slurm/down.sh            # keeps slurm.conf and the state directory
#   sudo tests/slurm/down.sh --purge    # also removes them (the next up.sh starts afresh)
#
# Environment: CNNBENCH_SLURM_DIR as for up.sh (default /var/lib/cnnbench-slurm).
set -euo pipefail

DIR=${CNNBENCH_SLURM_DIR:-/var/lib/cnnbench-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# Written by cnnbench tests/slurm/up.sh; rewritten by each run, edits are lost."
purge=0
case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

log() { echo "slurm down: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm down: error: must run as root (e.g. sudo $0)" >&2
    exit 1
fi
export SLURM_CONF=$CONF

. "$(dirname "${BASH_SOURCE[0]}")/daemons.sh"

# Jobs first, while slurmctld and slurmd can still end them (a job left running would be
# orphaned under a stopped slurmd).
if command -v squeue >/dev/null && [ -n "$(daemon_pids slurmctld "$DIR/slurmctld.pid")" ]; then
    jobs=$(timeout 15 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        log "cancelling jobs $(echo $jobs)"
        timeout 15 scancel $jobs 2>/dev/null || true
        for i in $(seq 100); do
            [ -z "$(timeout 15 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null || true)" ] && break
            sleep 0.2
        done
    fi
fi

rc=0
stop_daemon slurmd "$DIR/slurmd.pid" || rc=1
# Steps of jobs slurmctld could not reach.
stop_daemon slurmstepd /dev/null || rc=1
stop_daemon slurmctld "$DIR/slurmctld.pid" || rc=1
stop_daemon munged /run/munge/munged.pid || rc=1

if [ "$purge" = 1 ]; then
    log "removing $DIR"
    rm -rf "$DIR"
    if [ -f "$CONF" ] && grep -qxF "$MARK" "$CONF"; then
        log "removing $CONF"
        rm -f "$CONF"
        [ -f "$CONF.orig" ] && mv "$CONF.orig" "$CONF"
    fi
fi
[ "$rc" = 0 ] && log "stopped (slurmd, slurmctld, munged)"
exit "$rc"
