#!/usr/bin/env bash
# Runs the daemon under config/stagepost.service with systemd as PID 1: a
# systemd-nspawn container that boots this machine's /usr with an empty /etc,
# this checkout at /opt/stagepost and a git daemon on the host as the remote.
# A probe inside starts the unit, builds (writes the branch dir, fetches over
# git://, restarts an app server), uses the credential's token, stops, and
# starts with a bad ci.yaml, a missing credential and a missing branch root.
#
# Needs root, systemd-nspawn (package systemd-container), git, curl, and a
# built checkout (npm run build) whose node_modules is a directory inside it
# (the container sees the checkout only). NODE=/path/to/node (22+) if `node` is older.
# Prints the probe's log, then one line per expectation; exit 1 if one fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
node_bin=$(readlink -f "${NODE:-$(command -v node)}")
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
command -v systemd-nspawn >/dev/null || { echo "needs systemd-nspawn (apt-get install --no-install-recommends systemd-container)" >&2; exit 2; }
[ -f "$repo/dist/.stamp" ] || { echo "build first: npm run build" >&2; exit 2; }

work=$(mktemp -d /tmp/stagepost-nspawn.XXXXXX)
git_pid=
cleanup() {
  [ -n "$git_pid" ] && kill "$git_pid" 2>/dev/null || true
  mountpoint -q "$work/root/usr" && umount "$work/root/usr"
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root/usr" "$work/etc/systemd/system/stagepost.service.d" "$work/etc/stagepost" "$work/git" "$work/results"

free_ports=$("$node_bin" -e '
  const net = require("net");
  const one = () => new Promise((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
  (async () => console.log(await one(), await one(), await one()))();')
read -r git_port http_port app_port <<<"$free_ports"

# The remote: a bare repository with one commit, served by git daemon.
git init -q --bare "$work/git/app.git"
seed=$(mktemp -d)
git -C "$seed" init -q -b main
echo v1 >"$seed/f"
git -C "$seed" add f
git -C "$seed" -c user.email=probe@example.com -c user.name=probe commit -qm one
git -C "$seed" push -q "$work/git/app.git" main
rm -rf "$seed"
git daemon --base-path="$work/git" --export-all --listen=127.0.0.1 --port="$git_port" --reuseaddr "$work/git" \
  >"$work/git-daemon.log" 2>&1 &
git_pid=$!

# /etc of the container: a stagepost user, the unit and its drop-in, ci.yaml, credentials.
etc=$work/etc
cp /etc/nsswitch.conf "$etc/"
ln -s ../usr/lib/os-release "$etc/os-release"
printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'stagepost:x:990:990::/home/stagepost:/bin/bash' >"$etc/passwd"
printf '%s\n' 'root:x:0:' 'systemd-journal:x:101:' 'stagepost:x:990:' >"$etc/group"
cp "$repo/config/stagepost.service" "$etc/systemd/system/"
cat >"$etc/systemd/system/stagepost.service.d/node.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/opt/node/bin/node --max-semi-space-size=1 --no-opt /opt/stagepost/bin/stagepost.js run --config /etc/stagepost/ci.yaml
EOF
(
  umask 077
  echo "probe-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$etc/stagepost/http_token"
  echo "probe-smtp-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$etc/stagepost/smtp_password"
)
cat >"$etc/stagepost/ci.yaml" <<EOF
version: 1
state_dir: /var/lib/stagepost
poll: { interval: 2s, timeout: 10s }
http: { listen: "127.0.0.1:$http_port", token: "\${credential:http_token}" }
steps:
  - name: write
    run: 'echo "built \$STAGEPOST_BUILD" > built.txt && env > step-env.txt; (touch /etc/x; touch /home/stagepost/x; touch /var/lib/stagepost/x && echo state-writable) > rw-check.txt 2>&1 || true'
  - name: restart
    run: 'if [ -f app.pid ]; then kill \$(cat app.pid) || true; fi; setsid nohup /opt/node/bin/node -e "require(\"http\").createServer((q, s) => s.end(\"app up \" + process.pid)).listen($app_port)" > app.log 2>&1 < /dev/null & echo \$! > app.pid'
branches:
  branch1:
    dir: /srv/staging/branch1
    port: $app_port
    sources:
      - { name: app, vcs: git, url: "git://127.0.0.1:$git_port/app.git", ref: main, path: src/app }
EOF
cat >"$etc/systemd/system/probe.target" <<'EOF'
[Unit]
Description=stagepost probe
Wants=probe.service
EOF
cat >"$etc/systemd/system/probe.service" <<'EOF'
[Unit]
Description=stagepost probe script
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /results/probe.sh
ExecStartPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=240
EOF

{
  echo '#!/bin/bash'
  echo 'exec >/results/probe.log 2>&1'
  echo "HTTP=$http_port APP=$app_port"
  cat <<'EOF'
say() { echo "== $*"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
app() { curl -s -m 2 "http://127.0.0.1:$APP/"; }
wait_for() { for _ in $(seq 240); do eval "$1" && return 0; sleep 0.25; done; return 1; }
show() { systemctl show stagepost -p ActiveState -p SubState -p ExecMainStatus -p NRestarts | sort | tr '\n' ' '; echo; }
mkdir -p /srv/staging /home/stagepost
chown stagepost:stagepost /srv/staging /home/stagepost
say "pid1=$(cat /proc/1/comm) $(systemctl --version | head -1)"
t=$(date +%s%N); systemctl start stagepost; say "start: exit=$? ms=$(ms "$t")"
say "status right after start: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/api/status")"
say "state: $(show)"
say "status text: $(systemctl show -P StatusText stagepost)"
main=$(systemctl show -P MainPID stagepost)
say "nofile: $(grep 'open files' "/proc/$main/limits" | tr -s ' ' | cut -d' ' -f4,5 | tr ' ' /)"
say "token in daemon environ: $(tr '\0' '\n' <"/proc/$main/environ" | grep -c -F -f /etc/stagepost/http_token)"
wait_for '[ -s /srv/staging/branch1/app.pid ] && app >/dev/null'
first=$(app)
say "app after first build: $first"
token=$(cat /etc/stagepost/http_token)
say "poll with credential token: $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$HTTP/api/poll")"
say "poll with wrong token: $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer nope' "http://127.0.0.1:$HTTP/api/poll")"
say "forced build: $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$HTTP/api/branches/branch1/build")"
wait_for '[ -n "$(app)" ] && [ "$(app)" != "$first" ]'
say "app after forced build: $(app) (before: $first)"
say "built: $(cat /srv/staging/branch1/built.txt)"
say "daemon fds after two builds: $(ls "/proc/$main/fd" | wc -l)"
say "branch dir mode: $(stat -c %A /srv/staging/branch1/built.txt)"
say "rw-check: $(tr '\n' '|' </srv/staging/branch1/rw-check.txt)"
say "token in step env: $(grep -c -F -f /etc/stagepost/http_token /srv/staging/branch1/step-env.txt)"
say "NOTIFY_SOCKET in step env: $(grep -c NOTIFY_SOCKET /srv/staging/branch1/step-env.txt)"
say "token in journal: $(journalctl -u stagepost -o cat --no-pager | grep -c -F -f /etc/stagepost/http_token)"
say "security: $(systemd-analyze security stagepost --no-pager | tail -1)"
t=$(date +%s%N); systemctl stop stagepost; say "stop: exit=$? ms=$(ms "$t")"
say "app after stop: $(app || true)"
cp /etc/stagepost/ci.yaml /etc/stagepost/ci.yaml.good
printf 'version: 1\nbranches: { b: { dir: 3 } }\n' >/etc/stagepost/ci.yaml
t=$(date +%s%N); systemctl start stagepost; say "start with bad ci.yaml: exit=$? ms=$(ms "$t")"
sleep 7 # beyond RestartSec=5s: a restart would have happened
say "bad ci.yaml 7 s later: $(show)"
cp /etc/stagepost/ci.yaml.good /etc/stagepost/ci.yaml
systemctl reset-failed stagepost
mv /etc/stagepost/smtp_password /etc/stagepost/smtp_password.away
systemctl start stagepost; say "start without a credential file: exit=$?"
sleep 7
say "missing credential 7 s later: $(show)"
mv /etc/stagepost/smtp_password.away /etc/stagepost/smtp_password
systemctl reset-failed stagepost
mv /srv/staging /srv/staging.away
systemctl start stagepost; say "start without /srv/staging: exit=$?"
sleep 7
say "missing branch root 7 s later: $(show)"
say done
EOF
} >"$work/results/probe.sh"

mount --bind /usr "$work/root/usr"
timeout --kill-after=10 300 systemd-nspawn --quiet --register=no --keep-unit -D "$work/root" --volatile=yes -b \
  --bind="$etc:/etc" --bind-ro="$repo:/opt/stagepost" --bind-ro="$(dirname "$node_bin"):/opt/node/bin" \
  --bind="$work/results:/results" --console=pipe -- systemd.unit=probe.target >"$work/nspawn.log" 2>&1 || true

log=$work/results/probe.log
[ -f "$log" ] || { echo "the probe did not run; nspawn said:" >&2; cat "$work/nspawn.log" >&2; exit 1; }
cat "$log"
echo
failed=0
expect() {
  if grep -qE "$1" "$log"; then echo "ok   $2"; else echo "FAIL $2"; failed=1; fi
}
expect '^== pid1=systemd ' 'systemd is PID 1'
expect '^== start: exit=0 ' 'systemctl start succeeds'
expect '^== status right after start: 200$' 'the HTTP port answers as soon as systemctl start returns (READY=1)'
expect '^== state: ActiveState=active .*SubState=running ' 'the unit is active'
expect '^== nofile: 8192/8192$' 'LimitNOFILE=8192'
expect '^== token in daemon environ: 0$' 'the credential is not in the daemon environment'
expect '^== app after first build: app up [0-9]+$' 'the first build fetched over git:// and started the app server'
expect '^== poll with credential token: 200$' 'the token from the credential is accepted'
expect '^== poll with wrong token: 401$' 'a wrong token is refused'
expect '^== app after forced build: app up ([0-9]+) \(before: app up [0-9]+\)$' 'a forced build restarted the app server'
expect '^== built: built 2$' 'the build wrote its branch dir'
expect '^== branch dir mode: -rw-r-----$' 'UMask=0027'
expect "^== rw-check: touch: cannot touch '/etc/x': Read-only file system\|touch: cannot touch '/home/stagepost/x': Read-only file system\|state-writable\|$" 'ProtectSystem=strict, ProtectHome=read-only, state_dir writable'
expect '^== token in step env: 0$' 'the credential is not in a step environment'
expect '^== NOTIFY_SOCKET in step env: 0$' 'steps do not inherit NOTIFY_SOCKET'
expect '^== token in journal: 0$' 'the credential is not in the journal'
expect '^== stop: exit=0 ' 'systemctl stop succeeds'
expect '^== app after stop: $' 'the app server started by a step ended with the service'
expect '^== start with bad ci.yaml: exit=1 ' 'a bad ci.yaml fails systemctl start'
expect '^== bad ci.yaml 7 s later: ActiveState=failed ExecMainStatus=2 NRestarts=0 SubState=failed $' 'exit 2, no restart'
expect '^== missing credential 7 s later: ActiveState=failed ExecMainStatus=243 NRestarts=0 SubState=failed $' 'a missing credential file: 243, no restart'
expect '^== missing branch root 7 s later: ActiveState=failed ExecMainStatus=226 NRestarts=0 SubState=failed $' 'a missing ReadWritePaths= dir: 226, no restart'
exit $failed
