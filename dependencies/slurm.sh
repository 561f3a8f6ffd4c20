#!/usr/bin/env bash
# A real single-node Slurm cluster (controller + one compute node) in one folder, for the tests of
# `study.py --backend slurm`. Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge).
#   bash dependencies/slurm.sh start DIR   # prints "export SLURM_CONF=DIR/etc/slurm.conf" once the node is idle
#   bash dependencies/slurm.sh stop DIR    # cancels every job, shuts the cluster down, stops munged
# Nothing is written outside DIR; the daemons' PIDs are recorded in DIR/run.
set -euo pipefail
command="${1:-}"
dir="${2:-}"
if [ -z "$dir" ] || { [ "$command" != start ] && [ "$command" != stop ]; }; then
  echo "usage: bash dependencies/slurm.sh start|stop DIR" >&2
  exit 2
fi
host="$(hostname -s)"

start() {
  for tool in slurmctld slurmd munged mungekey sinfo; do
    command -v "$tool" >/dev/null || { echo "slurm: $tool not found: apt-get install slurm-wlm munge" >&2; exit 2; }
  done
  [ "$(id -u)" = 0 ] || { echo "slurm: the test cluster runs as root" >&2; exit 2; }
  mkdir -p "$dir"/{munge,etc,state,"spool/slurmd-$host",log,run}
  chmod 700 "$dir/munge"
  local memory
  memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  cat >"$dir/etc/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MinJobAge=3600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  [ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key" >/dev/null 2>&1
  munged -F --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.log" 2>&1 &
  echo $! >"$dir/run/munged.bg"
  for _ in $(seq 50); do [ -S "$dir/munge/munge.socket.2" ] && break; sleep 0.1; done
  export SLURM_CONF="$dir/etc/slurm.conf"
  slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/run/slurmctld.bg"
  slurmd -D -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
  echo $! >"$dir/run/slurmd.bg"
  for _ in $(seq 300); do
    if [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ]; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.1
  done
  echo "slurm: the node did not become idle in 30 s (logs in $dir/log)" >&2
  stop
  exit 1
}

stop() {
  export SLURM_CONF="$dir/etc/slurm.conf"
  scancel -u root 2>/dev/null || true
  for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
  scontrol shutdown 2>/dev/null || true
  for daemon in slurmctld slurmd munged; do
    [ -f "$dir/run/$daemon.bg" ] || continue
    pid=$(cat "$dir/run/$daemon.bg")
    [ "$daemon" = munged ] && kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/run/$daemon.bg"
  done
}

"$command"
