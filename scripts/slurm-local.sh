#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages, for kiln's Slurm launcher
# tests (`runner sweep --launcher slurm`): munged, slurmctld and slurmd on 127.0.0.1, one
# partition `debug` holding every core. Run as root; idempotent: where `sinfo` already shows
# an idle node it changes nothing. Prints the node line when ready; exit 1 when it cannot start.
#
#   sudo scripts/slurm-local.sh        # then: sinfo, sbatch, runner sweep --launcher slurm ...
#   scripts/slurm-local.sh stop        # stops the three daemons
set -euo pipefail

conf=/etc/slurm/slurm.conf
marker="# written by kiln's scripts/slurm-local.sh"

# Stops a daemon and waits for it to be gone (slurmctld saves its state on the way out).
stop() {
  pkill -x "$1" || return 0
  for _ in $(seq 1 100); do pgrep -x "$1" >/dev/null || return 0; sleep 0.1; done
  pkill -9 -x "$1" || true
}
if [ "${1:-}" = stop ]; then
  stop slurmd
  stop slurmctld
  stop munged
  exit 0
fi

# Each question to the controller is bounded: one that is not up must not hang the script.
ready() { timeout 5 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }
if command -v sinfo >/dev/null && ready; then
  sinfo -h -o 'slurm: node %N %t, %c cpus, partition %P'
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-local: needs root (installs Debian packages, starts daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
  ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null; }
fi

# A cluster someone else configured is theirs: never overwrite its slurm.conf.
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
  echo "slurm-local: $conf exists and was not written by this script; start that cluster instead" >&2
  exit 1
fi

host=$(hostname -s)
cpus=$(nproc)
# Slurm refuses a node that reports less memory than configured: leave it a margin.
memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf" <<CONF
$marker
ClusterName=kiln-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
# Seconds between SIGTERM and SIGKILL on cancel, requeue or time limit: room for a
# checkpoint.
KillWait=30
# A requeued job may start again at once (tests requeue and wait for the result).
MinJobAge=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# munged runs as the munge user with its key from the package.
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
# The daemons get no terminal and none of this script's output: a caller reading it (CI)
# must not wait for them to close it. They log to /var/log/slurm and /var/log/munge.
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
for _ in $(seq 1 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld </dev/null >/dev/null 2>&1
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd </dev/null >/dev/null 2>&1

started=$(date +%s)
while [ $(( $(date +%s) - started )) -lt 90 ]; do
  if ready; then
    timeout 5 sinfo -h -o 'slurm: node %N %t, %c cpus, partition %P'
    exit 0
  fi
  # A node that came up DOWN (e.g. after an unclean stop) is told to resume.
  timeout 5 scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm-local: the node did not become idle within 90 s; see /var/log/slurm/" >&2
sinfo >&2 || true
tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
