#!/usr/bin/env bash
# Local services for factflow's integration tests, all on 127.0.0.1:
#
#   rabbitmq  AMQP 5672, STOMP 61613 (guest/guest)      Debian's rabbitmq-server
#   artemis   STOMP-only 61614, all protocols 61616      ActiveMQ Artemis (artemis/artemis)
#   kafka     PLAINTEXT 9092, KRaft controller 9093      Apache Kafka, single node
#   pulsar    binary 6650, admin HTTP 8080               Apache Pulsar standalone
#   s3        HTTP 9000 (minioadmin/minioadmin)          moto_server, or MinIO on request
#
# Usage: scripts/services.sh start|stop|status|env [NAMES...]   (no names = all)
#
#   start   installs what is missing, starts what is stopped, waits until each service
#           answers a real protocol round trip, prints the endpoints; exits non-zero
#           naming the services that failed. A second run finds everything up and
#           only re-checks it. A service it started that is running but answers nothing
#           for FACTFLOW_SERVICES_STALE_WAIT seconds (default 30; a JVM out of heap stays
#           up, wedged) is stopped and started once more.
#   stop    stops the services this script started (never a process it did not start;
#           for rabbitmq: the rabbit@localhost node). To switch the S3 backend: stop s3 first
#   status  up/down per service (exit 3 when one is down)
#   env     prints the endpoints as `export FACTFLOW_TEST_...=...` lines
#
# Everything it downloads, builds and logs lives under
# ${FACTFLOW_SERVICES_HOME:-/root/.cache/factflow-services} (logs/ for the logs).
# Knobs: FACTFLOW_S3_BACKEND=moto|minio (default moto: seconds to install; minio is built
# from the Go module proxy once, 4-9 minutes on 2 cores, then cached; moto is used when
# that build fails), FACTFLOW_SERVICES_TIMEOUT (seconds to wait per service, default by service),
# FACTFLOW_PULSAR_HTTP_PORT (default 8080), FACTFLOW_S3_PORT (default 9000),
# FACTFLOW_SERVICES_PYTHON (default python3).
set -Eeuo pipefail

FF_HOME=${FACTFLOW_SERVICES_HOME:-/root/.cache/factflow-services}
LOG_DIR=$FF_HOME/logs
RUN_DIR=$FF_HOME/run
PY=${FACTFLOW_SERVICES_PYTHON:-python3}
MAVEN_CENTRAL=https://repo1.maven.org/maven2

ARTEMIS_VERSION=2.40.0
KAFKA_VERSION=4.4.0
PULSAR_VERSION=3.0.7   # 3.0.x LTS; runs on Java 17
MAVEN_VERSION=3.9.16   # Debian's Maven 3.8 resolver never finishes on pulsar-broker's graph
MAVEN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
KAFKA_CLUSTER_ID=ZmFjdGZsb3ctdGVzdHMtMQ   # any 22-char base64url UUID; fixed so data dirs stay valid

RABBITMQ_PORT=5672
RABBITMQ_STOMP_PORT=61613
ARTEMIS_STOMP_PORT=61614
ARTEMIS_PORT=61616
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
PULSAR_PORT=6650
PULSAR_HTTP_PORT=${FACTFLOW_PULSAR_HTTP_PORT:-8080}
S3_PORT=${FACTFLOW_S3_PORT:-9000}
S3_CONSOLE_PORT=$((S3_PORT + 1))
S3_BACKEND_WANTED=${FACTFLOW_S3_BACKEND:-moto}

ALL_SERVICES=(rabbitmq artemis kafka pulsar s3)
PY_DEPS=(aio-pika stomp.py pulsar-client confluent-kafka minio)

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

default_timeout() {
  case $1 in
    pulsar) echo 180 ;;
    s3) echo 60 ;;
    *) echo 120 ;;
  esac
}
ready_timeout() { echo "${FACTFLOW_SERVICES_TIMEOUT:-$(default_timeout "$1")}"; }
STALE_WAIT=${FACTFLOW_SERVICES_STALE_WAIT:-30}  # a running service that answers none of it is restarted

# ---------------------------------------------------------------------------------------
# readiness: one Python program, one real round trip per service
# ---------------------------------------------------------------------------------------
read -r -d '' CHECK_PY <<'PY' || true
import asyncio, os, socket, sys, threading, time, uuid

svc, wait = sys.argv[1], float(sys.argv[2])
E = os.environ
deadline = time.monotonic() + wait
H = "127.0.0.1"


def port_open(port):
    try:
        socket.create_connection((H, port), 1).close()
        return True
    except OSError:
        return False


def stomp_roundtrip(port, user, password, vhost, t):
    import stomp

    body = "ready-" + uuid.uuid4().hex
    got, errors = threading.Event(), []

    class L(stomp.ConnectionListener):
        def on_message(self, frame):
            if frame.body == body:
                got.set()

        def on_error(self, frame):
            errors.append(frame.headers.get("message") or frame.body)
            got.set()

    conn = stomp.Connection12([(H, port)], vhost=vhost, heartbeats=(0, 0), timeout=t,
                              reconnect_attempts_max=1)
    conn.set_listener("ready", L())
    try:
        conn.connect(user, password, wait=True)
        dest = "/queue/factflow-ready"  # one fixed queue: RabbitMQ keeps STOMP queues
        conn.subscribe(dest, id="1", ack="auto")
        conn.send(dest, body=body)
        if not got.wait(t):
            raise TimeoutError(f"STOMP :{port}: message did not come back in {t:.0f}s")
        if errors:
            raise RuntimeError(f"STOMP :{port}: {errors[0]}")
    finally:
        try:
            conn.disconnect()
        except Exception:
            pass


async def amqp_roundtrip(url, t):
    import aio_pika

    conn = await aio_pika.connect(url, timeout=t)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue("", exclusive=True, auto_delete=True)
        body = uuid.uuid4().bytes
        await ch.default_exchange.publish(aio_pika.Message(body), routing_key=q.name)
        end = time.monotonic() + t
        while time.monotonic() < end:
            msg = await q.get(no_ack=True, fail=False)
            if msg is not None and msg.body == body:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("AMQP: message did not come back")


def rabbitmq(t):
    asyncio.run(asyncio.wait_for(
        amqp_roundtrip(f"amqp://guest:guest@{H}:{E['RABBITMQ_PORT']}/", t), t + 1))
    # RabbitMQ maps the STOMP `host` header to a vhost: name "/" explicitly
    stomp_roundtrip(int(E["RABBITMQ_STOMP_PORT"]), "guest", "guest", "/", t)


def artemis(t):
    stomp_roundtrip(int(E["ARTEMIS_STOMP_PORT"]), "artemis", "artemis", None, t)
    stomp_roundtrip(int(E["ARTEMIS_PORT"]), "artemis", "artemis", None, t)


def kafka(t):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    bs = f"{H}:{E['KAFKA_PORT']}"
    topic, value = "factflow-ready", uuid.uuid4().bytes
    delivered = []
    p = Producer({"bootstrap.servers": bs, "message.timeout.ms": int(t * 1000),
                  "log_level": 0})
    p.produce(topic, value, on_delivery=lambda err, msg: delivered.append((err, msg)))
    p.flush(t)
    if not delivered:
        raise TimeoutError("Kafka: produce not acknowledged")
    err, msg = delivered[0]
    if err is not None:
        raise KafkaException(err)
    c = Consumer({"bootstrap.servers": bs, "group.id": "factflow-ready",
                  "enable.auto.commit": False, "log_level": 0})
    try:
        c.assign([TopicPartition(topic, msg.partition(), msg.offset())])
        end = time.monotonic() + t
        while time.monotonic() < end:
            m = c.poll(0.5)
            if m is not None and not m.error() and m.value() == value:
                return
        raise TimeoutError("Kafka: message did not come back")
    finally:
        c.close()


def pulsar(t):
    import urllib.request
    import pulsar as pl

    with urllib.request.urlopen(f"http://{H}:{E['PULSAR_HTTP_PORT']}/admin/v2/clusters",
                                timeout=t) as r:
        if r.status != 200:
            raise RuntimeError(f"Pulsar admin HTTP answered {r.status}")
    client = pl.Client(f"pulsar://{H}:{E['PULSAR_PORT']}",
                       operation_timeout_seconds=max(int(t), 5),
                       connection_timeout_ms=int(min(t, 10) * 1000),
                       logger=pl.ConsoleLogger(pl.LoggerLevel.Error))
    try:
        topic = "persistent://public/default/factflow-ready"
        reader = client.create_reader(topic, pl.MessageId.latest)
        value = uuid.uuid4().bytes
        client.create_producer(topic).send(value)
        end = time.monotonic() + t
        while time.monotonic() < end:
            m = reader.read_next(timeout_millis=int(min(t, 5) * 1000))
            if m.data() == value:
                return
        raise TimeoutError("Pulsar: message did not come back")
    finally:
        client.close()


def s3(t):
    import io
    import urllib.request
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=t, read=t),
                               retries=urllib3.Retry(total=0))
    c = Minio(f"{H}:{E['S3_PORT']}", "minioadmin", "minioadmin", secure=False,
              http_client=http)
    bucket, key, value = "factflow-ready", uuid.uuid4().hex, uuid.uuid4().bytes
    if not c.bucket_exists(bucket):
        c.make_bucket(bucket)
    c.put_object(bucket, key, io.BytesIO(value), len(value))
    r = c.get_object(bucket, key)
    try:
        if r.read() != value:
            raise RuntimeError("S3: object read back differs")
    finally:
        r.close()
        r.release_conn()
    c.remove_object(bucket, key)
    # which server answered, for the report
    try:
        with urllib.request.urlopen(f"http://{H}:{E['S3_PORT']}/minio/health/live", timeout=t) as r:
            server = r.headers.get("Server", "")
    except Exception as exc:  # moto answers 404/other here
        server = getattr(exc, "headers", {}) and exc.headers.get("Server", "") or ""
    print("server=" + ("minio" if "minio" in server.lower() else (server or "unknown")))


PORTS = {
    "rabbitmq": ["RABBITMQ_PORT", "RABBITMQ_STOMP_PORT"],
    "artemis": ["ARTEMIS_STOMP_PORT", "ARTEMIS_PORT"],
    "kafka": ["KAFKA_PORT"],
    "pulsar": ["PULSAR_PORT", "PULSAR_HTTP_PORT"],
    "s3": ["S3_PORT"],
}
CHECK = {"rabbitmq": rabbitmq, "artemis": artemis, "kafka": kafka, "pulsar": pulsar, "s3": s3}

last = "not checked"
while True:
    closed = [E[p] for p in PORTS[svc] if not port_open(int(E[p]))]
    if closed:
        last = "nothing listens on 127.0.0.1:" + ",".join(closed)
    else:
        try:
            CHECK[svc](min(max(deadline - time.monotonic(), 5.0), 20.0))
            sys.exit(0)
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}".strip()
    if time.monotonic() >= deadline:
        print(last, file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
PY

export RABBITMQ_PORT RABBITMQ_STOMP_PORT ARTEMIS_STOMP_PORT ARTEMIS_PORT KAFKA_PORT \
  PULSAR_PORT PULSAR_HTTP_PORT S3_PORT

# check NAME WAIT_SECONDS: round trip, retried until WAIT_SECONDS; last error on stderr
check() {
  local wait=$2
  timeout --kill-after=5 $((wait + 45)) "$PY" -c "$CHECK_PY" "$1" "$wait"
}

ensure_py_deps() {
  "$PY" -c 'import aio_pika, stomp, pulsar, confluent_kafka, minio' 2>/dev/null && return 0
  say "installing Python client libraries for the checks: ${PY_DEPS[*]}"
  "$PY" -m pip install -q "${PY_DEPS[@]}" >>"$LOG_DIR/pip.log" 2>&1 \
    || die "pip install ${PY_DEPS[*]} failed (see $LOG_DIR/pip.log)"
}

# ---------------------------------------------------------------------------------------
# processes this script started: pid file + a mark in the process environment
# ---------------------------------------------------------------------------------------
# (stderr is redirected first: a process that just ended has no /proc entry to open)
cmdline_of() { tr '\0\n' '  ' 2>/dev/null <"/proc/$1/cmdline"; }

# every process launched here carries FACTFLOW_SERVICE_MARK=NAME@HOME in its environment
mark_of() { echo "FACTFLOW_SERVICE_MARK=$1@$FF_HOME"; }
has_mark() { tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF -- "$2"; }

# our_pid NAME: prints the pid when the process we recorded is alive
our_pid() {
  local f=$RUN_DIR/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && has_mark "$pid" "$(mark_of "$1")" && { echo "$pid"; return 0; }
  return 1
}

# launch NAME DIR CMD...: detached (own session), output appended to logs/NAME.log
launch() {
  local name=$1 dir=$2 pid mark p
  shift 2
  mark=$(mark_of "$name")
  printf '\n===== %s start %s\n' "$(date -Is)" "$name" >>"$LOG_DIR/$name.log"
  (cd "$dir" && export "${mark?}" && exec setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null) &
  pid=$!
  sleep 0.3
  if ! has_mark "$pid" "$mark"; then  # setsid forked: find the child
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      has_mark "$p" "$mark" && { pid=$p; break; }
    done
  fi
  echo "$pid" >"$RUN_DIR/$name.pid"
}

# stop_pid NAME PID SECONDS: TERM, wait, then KILL
stop_pid() {
  local name=$1 pid=$2 t=$3 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) still running after ${t}s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

# who_listens PORT: "pid cmd" of a process listening on 127.0.0.1:PORT, if any
who_listens() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -oE 'pid=[0-9]+' | head -1 | cut -d= -f2
}

require_free_ports() {  # NAME PORT...
  local name=$1 port pid busy=()
  shift
  for port in "$@"; do
    pid=$(who_listens "$port")
    [[ -n $pid ]] && busy+=("$port (pid $pid: $(cmdline_of "$pid" | cut -c1-80))")
  done
  ((${#busy[@]} == 0)) && return 0
  say "$name: cannot start, port(s) taken by a process this script did not start: ${busy[*]}"
  return 1
}

# ---------------------------------------------------------------------------------------
# installs
# ---------------------------------------------------------------------------------------
ensure_java() {
  if command -v java >/dev/null 2>&1; then
    local v
    v=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/{print $2}')
    [[ ${v%%.*} -ge 17 ]] && return 0
  fi
  say "installing a Java 17 runtime (apt)"
  apt_install openjdk-17-jre-headless
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "$@" >>"$LOG_DIR/apt.log" 2>&1; then
    apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 || true
    apt-get install -y -q "$@" >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get install $* failed (see $LOG_DIR/apt.log)"
  fi
}

# fetch URL DEST: download once (atomic)
fetch() {
  [[ -s $2 ]] && return 0
  mkdir -p "$(dirname "$2")"
  curl -fsSL --retry 3 --connect-timeout 20 -o "$2.part" "$1" || { rm -f "$2.part"; return 1; }
  mv "$2.part" "$2"
}

ensure_maven() {
  MVN=$FF_HOME/tools/apache-maven-$MAVEN_VERSION/bin/mvn
  [[ -x $MVN ]] && return 0
  say "downloading Maven $MAVEN_VERSION (resolver for the Kafka/Pulsar jars)"
  local tgz=$FF_HOME/downloads/apache-maven-$MAVEN_VERSION-bin.tar.gz
  fetch "$MAVEN_CENTRAL/org/apache/maven/apache-maven/$MAVEN_VERSION/apache-maven-$MAVEN_VERSION-bin.tar.gz" "$tgz" \
    || die "cannot download Maven $MAVEN_VERSION from Maven Central"
  mkdir -p "$FF_HOME/tools"
  tar -xzf "$tgz" -C "$FF_HOME/tools"
}

# resolve_classpath NAME POM_BODY: runtime classpath of the given dependencies -> NAME/classpath
resolve_classpath() {
  local name=$1 dir=$FF_HOME/$1
  local stamp=$dir/classpath.stamp want
  want=$(printf '%s' "$2" | sha1sum | cut -c1-40)
  [[ -s $dir/classpath && -f $stamp && $(<"$stamp") == "$want" ]] && return 0
  ensure_maven
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>factflow.services</groupId><artifactId>$name-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
$2
</project>
EOF
  say "$name: resolving jars from Maven Central (log: $LOG_DIR/$name-maven.log)"
  if ! "$MVN" -B -ntp -f "$dir/pom.xml" -Dmaven.repo.local="$FF_HOME/m2" \
      -Daether.dependencyCollector.impl=bf -Dmaven.artifact.threads=8 \
      "$MAVEN_DEP_PLUGIN:build-classpath" -Dmdep.includeScope=runtime \
      -Dmdep.outputFile="$dir/classpath.part" >"$LOG_DIR/$name-maven.log" 2>&1; then
    say "$name: Maven failed, last lines:"; tail -5 "$LOG_DIR/$name-maven.log" >&2
    return 1
  fi
  mv "$dir/classpath.part" "$dir/classpath"
  echo "$want" >"$stamp"
}

# ---------------------------------------------------------------------------------------
# rabbitmq
# ---------------------------------------------------------------------------------------
write_if_changed() {  # FILE CONTENT
  [[ -f $1 && $(<"$1") == "$2" ]] && return 0
  printf '%s\n' "$2" >"$1"
}

install_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    say "rabbitmq: apt-get install rabbitmq-server"
    apt_install rabbitmq-server
  fi
  mkdir -p /etc/rabbitmq
  write_if_changed /etc/rabbitmq/rabbitmq-env.conf "# written by factflow scripts/services.sh
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$RABBITMQ_PORT
export ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS=\"-kernel inet_dist_use_interface {127,0,0,1}\""
  write_if_changed /etc/rabbitmq/rabbitmq.conf "# written by factflow scripts/services.sh
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
stomp.listeners.tcp.1 = 127.0.0.1:$RABBITMQ_STOMP_PORT"
  write_if_changed /etc/rabbitmq/enabled_plugins "[rabbitmq_stomp]."
  ln -sfn /var/log/rabbitmq "$LOG_DIR/rabbitmq"
}

rabbitmq_node_up() { timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; }

launch_rabbitmq() {
  if rabbitmq_node_up; then
    # node runs (e.g. started before this config): make sure STOMP is on
    timeout 60 rabbitmq-plugins -q enable rabbitmq_stomp >>"$LOG_DIR/rabbitmq-ctl.log" 2>&1 || true
    return 0
  fi
  require_free_ports rabbitmq "$RABBITMQ_PORT" "$RABBITMQ_STOMP_PORT" || return 1
  setsid rabbitmq-server -detached >>"$LOG_DIR/rabbitmq-ctl.log" 2>&1 </dev/null
}

stop_rabbitmq() {
  command -v rabbitmqctl >/dev/null 2>&1 || return 0
  rabbitmq_node_up || return 0
  timeout 90 rabbitmqctl -q shutdown >>"$LOG_DIR/rabbitmq-ctl.log" 2>&1 \
    || timeout 60 rabbitmqctl -q stop >>"$LOG_DIR/rabbitmq-ctl.log" 2>&1 || true
  # epmd was started by the node; leave it when another Erlang node still uses it
  if command -v epmd >/dev/null 2>&1 && ! epmd -names 2>/dev/null | grep -q '^name '; then
    epmd -kill >/dev/null 2>&1 || true
  fi
}

rabbitmq_info() {
  echo "amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/  stomp://guest:guest@127.0.0.1:$RABBITMQ_STOMP_PORT (STOMP host/vhost must be \"/\")"
}

# ---------------------------------------------------------------------------------------
# artemis
# ---------------------------------------------------------------------------------------
ARTEMIS_CONF_VERSION=2  # bump when the instance options below change
install_artemis() {
  local base=$FF_HOME/artemis dist inst tgz
  dist=$base/apache-artemis-$ARTEMIS_VERSION
  inst=$base/instance
  if [[ ! -x $dist/bin/artemis ]]; then
    tgz=$FF_HOME/downloads/apache-artemis-$ARTEMIS_VERSION-bin.tar.gz
    say "artemis: downloading $ARTEMIS_VERSION from Maven Central"
    fetch "$MAVEN_CENTRAL/org/apache/activemq/apache-artemis/$ARTEMIS_VERSION/apache-artemis-$ARTEMIS_VERSION-bin.tar.gz" "$tgz" \
      || { say "artemis: download failed"; return 1; }
    mkdir -p "$base"
    tar -xzf "$tgz" -C "$base"
  fi
  local want="$ARTEMIS_VERSION/$ARTEMIS_CONF_VERSION"
  [[ -f $inst/factflow.stamp && $(<"$inst/factflow.stamp") == "$want" ]] && return 0
  our_pid artemis >/dev/null && return 0  # running instance: leave it alone
  say "artemis: creating broker instance $inst"
  rm -rf "$inst"
  "$dist/bin/artemis" create --silent --force \
    --user artemis --password artemis --require-login \
    --host 127.0.0.1 --http-host 127.0.0.1 --no-web \
    --no-amqp-acceptor --no-mqtt-acceptor --no-hornetq-acceptor --no-stomp-acceptor \
    --no-autotune --no-fsync --java-memory 384M \
    "$inst" >"$LOG_DIR/artemis-create.log" 2>&1 \
    || { say "artemis: create failed (see $LOG_DIR/artemis-create.log)"; return 1; }
  # the profile pairs -Xms512M with our -Xmx: keep the initial heap small
  sed -i 's/-Xms[0-9]*[MmGg]/-Xms64M/' "$inst/etc/artemis.profile"
  # a STOMP-only acceptor next to the all-protocols one on 61616
  sed -i "s#^\(\s*\)\(<acceptor name=\"artemis\">.*</acceptor>\)#\1\2\n\1<acceptor name=\"stomp\">tcp://127.0.0.1:$ARTEMIS_STOMP_PORT?tcpSendBufferSize=1048576;tcpReceiveBufferSize=1048576;protocols=STOMP;useEpoll=true</acceptor>#" \
    "$inst/etc/broker.xml"
  grep -q "<acceptor name=\"stomp\">" "$inst/etc/broker.xml" \
    || { say "artemis: could not add the STOMP acceptor to broker.xml"; return 1; }
  sed -i "s#tcp://127.0.0.1:61616?#tcp://127.0.0.1:$ARTEMIS_PORT?#" "$inst/etc/broker.xml"
  # page to disk well before the 384 MB heap fills: at the default (half the heap) a
  # 200,000-message backlog left the JVM in back-to-back full GCs, up but answering nothing
  sed -i "s#^\(\s*\)<global-max-messages>-1</global-max-messages>#&\n\1<global-max-size>64Mb</global-max-size>#" \
    "$inst/etc/broker.xml"
  grep -q "<global-max-size>64Mb</global-max-size>" "$inst/etc/broker.xml" \
    || { say "artemis: could not set global-max-size in broker.xml"; return 1; }
  echo "$want" >"$inst/factflow.stamp"
}

launch_artemis() {
  require_free_ports artemis "$ARTEMIS_PORT" "$ARTEMIS_STOMP_PORT" || return 1
  ln -sfn "$FF_HOME/artemis/instance/log/artemis.log" "$LOG_DIR/artemis-broker.log"
  JAVA_ARGS_APPEND="-Dfactflow.service=artemis" \
    launch artemis "$FF_HOME/artemis/instance" "$FF_HOME/artemis/instance/bin/artemis" run
}

artemis_info() {
  echo "stomp://artemis:artemis@127.0.0.1:$ARTEMIS_STOMP_PORT (STOMP only)  tcp://127.0.0.1:$ARTEMIS_PORT (CORE,AMQP,STOMP,OPENWIRE,MQTT,HORNETQ)"
}

# ---------------------------------------------------------------------------------------
# kafka (KRaft, broker+controller in one JVM)
# ---------------------------------------------------------------------------------------
install_kafka() {
  resolve_classpath kafka "  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.5</version></dependency>
  </dependencies>" || return 1
  local d=$FF_HOME/kafka
  write_if_changed "$d/server.properties" "# written by factflow scripts/services.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.retention.hours=24"
  write_if_changed "$d/log4j2.properties" "status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG_DIR/kafka-server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN"
}

kafka_java() {  # sets KAFKA_JAVA: the java command line up to the main class
  local d=$FF_HOME/kafka
  KAFKA_JAVA=(java -Xms64m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dfactflow.service=kafka -Dlog4j2.configurationFile="$d/log4j2.properties"
    -cp "$(<"$d/classpath")")
}

launch_kafka() {
  local d=$FF_HOME/kafka
  require_free_ports kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" || return 1
  kafka_java
  if [[ ! -f $d/data/meta.properties ]]; then
    say "kafka: formatting storage $d/data"
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted \
      -t "$KAFKA_CLUSTER_ID" -c "$d/server.properties" >>"$LOG_DIR/kafka.log" 2>&1 \
      || { say "kafka: storage format failed (see $LOG_DIR/kafka.log)"; return 1; }
  fi
  launch kafka "$d" "${KAFKA_JAVA[@]}" kafka.Kafka "$d/server.properties"
}

kafka_info() { echo "bootstrap 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, auto topic creation on)"; }

# ---------------------------------------------------------------------------------------
# pulsar standalone (RocksDB metadata, one in-process bookie)
# ---------------------------------------------------------------------------------------
install_pulsar() {
  resolve_classpath pulsar "  <dependencyManagement><dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar</artifactId><version>$PULSAR_VERSION</version><type>pom</type><scope>import</scope></dependency>
  </dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId><version>$PULSAR_VERSION</version></dependency>
  </dependencies>" || return 1
  local d=$FF_HOME/pulsar
  write_if_changed "$d/standalone.conf" "# written by factflow scripts/services.sh (broker and bookie read it)
clusterName=standalone
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$PULSAR_PORT
webServicePort=$PULSAR_HTTP_PORT
listeningInterface=lo
allowLoopback=true
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
loadBalancerOverrideBrokerNicSpeedGbps=1
brokerShutdownTimeoutMs=3000
managedLedgerCacheSizeMB=64
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=32
journalPreAllocSizeMB=4"
  write_if_changed "$d/log4j2.yaml" "Configuration:
  status: warn
  Appenders:
    File:
      name: FILE
      fileName: $LOG_DIR/pulsar-server.log
      PatternLayout:
        Pattern: \"%d{ISO8601} [%t] %-5level %logger{36} - %msg%n\"
  Loggers:
    Root:
      level: info
      AppenderRef:
        - ref: FILE"
}

launch_pulsar() {
  local d=$FF_HOME/pulsar
  require_free_ports pulsar "$PULSAR_PORT" "$PULSAR_HTTP_PORT" || return 1
  local opens=(java.base/java.io java.base/java.lang java.base/sun.net java.management/sun.management
    jdk.management/com.sun.management.internal java.base/jdk.internal.misc java.base/jdk.internal.platform)
  local args=(java -Xms128m -Xmx512m -XX:MaxDirectMemorySize=256m -XX:+UseG1GC
    -Dfactflow.service=pulsar -Dlog4j.configurationFile="$d/log4j2.yaml"
    -Dpulsar.allocator.exit_on_oom=true -Dio.netty.leakDetectionLevel=disabled
    -Dio.netty.recycler.maxCapacityPerThread=4096)
  local o
  for o in "${opens[@]}"; do args+=(--add-opens "$o=ALL-UNNAMED"); done
  args+=(-cp "$(<"$d/classpath")" org.apache.pulsar.PulsarStandaloneStarter
    --config "$d/standalone.conf" --no-functions-worker --no-stream-storage)
  # (its one bookie takes a free port on 127.0.0.1 by itself)
  # data/metadata and data/standalone/bookkeeper are relative to the working directory
  launch pulsar "$d" "${args[@]}"
}

pulsar_info() { echo "pulsar://127.0.0.1:$PULSAR_PORT  http://127.0.0.1:$PULSAR_HTTP_PORT (admin)"; }

# ---------------------------------------------------------------------------------------
# s3: MinIO built from the Go module proxy, else moto_server
# ---------------------------------------------------------------------------------------
MINIO_BIN=$FF_HOME/bin/minio-$MINIO_VERSION
S3_BUILD_PID=

s3_backend_file() { echo "$RUN_DIR/s3.backend"; }

install_s3() {  # starts the MinIO build in the background when needed
  S3_BACKEND=$S3_BACKEND_WANTED
  if [[ $S3_BACKEND == minio ]]; then
    [[ -x $MINIO_BIN ]] && return 0
    if ! command -v go >/dev/null 2>&1; then
      say "s3: no Go toolchain, using moto_server instead of MinIO"
      S3_BACKEND=moto
    else
      say "s3: building MinIO ($MINIO_MODULE@$MINIO_VERSION) in the background (log: $LOG_DIR/minio-build.log)"
      mkdir -p "$FF_HOME/bin" "$FF_HOME/go"
      (
        export GOPATH=$FF_HOME/go GOMODCACHE=$FF_HOME/go/pkg/mod GOCACHE=$FF_HOME/go/build-cache
        export GOBIN=$FF_HOME/go/bin GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
        start=$(date +%s)
        nice -n 5 go install -trimpath -ldflags "-s -w" "$MINIO_MODULE@$MINIO_VERSION" \
          && mv "$GOBIN/minio" "$MINIO_BIN" \
          && echo "built in $(($(date +%s) - start))s" \
          && { go clean -modcache; rm -rf "$GOCACHE"; }  # ~2 GB; the binary is the cache
      ) >"$LOG_DIR/minio-build.log" 2>&1 &
      S3_BUILD_PID=$!
      return 0
    fi
  fi
  if [[ $S3_BACKEND == moto ]] && ! "$PY" -c 'import moto.server, flask, flask_cors' 2>/dev/null; then
    say "s3: pip install moto[server]"
    "$PY" -m pip install -q "moto[server]" >>"$LOG_DIR/pip.log" 2>&1 \
      || { say "s3: pip install moto[server] failed (see $LOG_DIR/pip.log)"; return 1; }
  fi
}

launch_s3() {
  if [[ -n $S3_BUILD_PID ]]; then
    say "s3: waiting for the MinIO build"
    if ! wait "$S3_BUILD_PID"; then
      say "s3: MinIO build failed (last lines of $LOG_DIR/minio-build.log below); falling back to moto_server"
      tail -5 "$LOG_DIR/minio-build.log" >&2
      S3_BACKEND=moto S3_BACKEND_WANTED=moto S3_BUILD_PID=
      install_s3 || return 1
    fi
    S3_BUILD_PID=
  fi
  require_free_ports s3 "$S3_PORT" || return 1
  mkdir -p "$FF_HOME/s3/data"
  if [[ $S3_BACKEND == minio ]]; then
    MINIO_ROOT_USER=minioadmin MINIO_ROOT_PASSWORD=minioadmin MINIO_BROWSER=off \
      MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
      launch s3 "$FF_HOME/s3" "$MINIO_BIN" server --quiet --anonymous \
      --address "127.0.0.1:$S3_PORT" --console-address "127.0.0.1:$S3_CONSOLE_PORT" "$FF_HOME/s3/data"
  else
    # moto keeps everything in memory
    launch s3 "$FF_HOME/s3" "$PY" -m moto.server -H 127.0.0.1 -p "$S3_PORT"
  fi
  echo "$S3_BACKEND" >"$(s3_backend_file)"
}

s3_info() {
  local b
  b=$(cat "$(s3_backend_file)" 2>/dev/null || echo "?")
  echo "http://127.0.0.1:$S3_PORT  minioadmin/minioadmin (server: $b)"
}

# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------
stop_timeout() { case $1 in pulsar|kafka) echo 40 ;; *) echo 30 ;; esac; }

stop_service() {
  local name=$1 pid
  if [[ $name == rabbitmq ]]; then
    stop_rabbitmq
  elif pid=$(our_pid "$name"); then
    stop_pid "$name" "$pid" "$(stop_timeout "$name")"
  else
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  say "$name: stopped"
}

# owner NAME: how the running service relates to this script
owner() {
  local pid
  if [[ $1 == rabbitmq ]]; then
    command -v rabbitmqctl >/dev/null 2>&1 && rabbitmq_node_up && { echo "node rabbit@localhost"; return; }
    echo "not ours"; return
  fi
  if pid=$(our_pid "$1"); then echo "pid $pid"; else echo "not started by this script"; fi
}

info() { "${1}_info"; }

# quick_checks NAMES...: one round trip each, in parallel; sets UP[name]=1|0
declare -A UP=() WHY=()
quick_checks() {
  local dir name pids=()
  dir=$(mktemp -d)
  for name in "$@"; do
    (check "$name" 0 >"$dir/$name.out" 2>"$dir/$name.err"; echo $? >"$dir/$name.rc") &
    pids+=($!)
  done
  wait "${pids[@]}" 2>/dev/null || true
  for name in "$@"; do
    UP[$name]=$([[ $(cat "$dir/$name.rc" 2>/dev/null) == 0 ]] && echo 1 || echo 0)
    WHY[$name]=$(tail -1 "$dir/$name.err" 2>/dev/null || true)
  done
  rm -rf "$dir"
}

print_endpoints() {
  local name
  for name in "$@"; do printf '  %-9s %s\n' "$name" "$(info "$name")"; done
}

cmd_start() {
  local names=("$@") name failed=() todo=() t start_all
  start_all=$(date +%s)
  ensure_py_deps
  quick_checks "${names[@]}"
  for name in "${names[@]}"; do
    if [[ ${UP[$name]} == 1 ]]; then
      say "$name: already up ($(owner "$name"))"
    else
      todo+=("$name")
    fi
  done
  if ((${#todo[@]})); then
    # installs: the MinIO build (minutes) first so that it overlaps with the rest
    local ordered=()
    [[ " ${todo[*]} " == *" s3 "* ]] && ordered+=(s3)
    for name in "${todo[@]}"; do [[ $name != s3 ]] && ordered+=("$name"); done
    todo=("${ordered[@]}")
    for name in "${todo[@]}"; do
      [[ $name =~ ^(artemis|kafka|pulsar)$ ]] && { ensure_java; break; }
    done
    local installed=()
    for name in "${todo[@]}"; do
      if "install_$name"; then installed+=("$name"); else failed+=("$name"); fi
    done
    # launch everything (s3 last: it may wait for its build), then wait for each
    local launched=()
    for name in "${installed[@]}"; do
      [[ $name == s3 ]] && continue
      if our_pid "$name" >/dev/null; then
        say "$name: process running, not answering yet: waiting up to ${STALE_WAIT}s"
        if check "$name" "$STALE_WAIT" >/dev/null 2>"$LOG_DIR/$name-check.err"; then
          launched+=("$name")
          continue
        fi
        # a broker that stopped answering (a JVM out of heap: it stays up, wedged) gets
        # one restart rather than failing every run that finds it
        say "$name: still not answering ($(tail -1 "$LOG_DIR/$name-check.err" | grep . || echo 'no reply')): restarting it"
        stop_service "$name"
      fi
      if say "$name: starting" && "launch_$name"; then
        launched+=("$name")
      else
        failed+=("$name")
      fi
    done
    for name in "${launched[@]}"; do
      t=$(ready_timeout "$name")
      if check "$name" "$t" >/dev/null 2>"$LOG_DIR/$name-check.err"; then
        say "$name: ready ($(($(date +%s) - start_all))s since start)"
      else
        say "$name: NOT ready after ${t}s: $(tail -1 "$LOG_DIR/$name-check.err") (logs: $LOG_DIR/$name*.log)"
        failed+=("$name")
      fi
    done
    if [[ " ${installed[*]} " == *" s3 "* ]]; then
      local s3_ok=1
      if our_pid s3 >/dev/null; then
        say "s3: process running, not answering yet: waiting"
      else
        say "s3: starting"
        launch_s3 || s3_ok=0
      fi
      if ((s3_ok)); then
        t=$(ready_timeout s3)
        if check s3 "$t" >/dev/null 2>"$LOG_DIR/s3-check.err"; then
          say "s3: ready ($(($(date +%s) - start_all))s since start)"
        else
          say "s3: NOT ready after ${t}s: $(tail -1 "$LOG_DIR/s3-check.err") (logs: $LOG_DIR/s3.log)"
          failed+=(s3)
        fi
      else
        failed+=(s3)
      fi
    fi
  fi
  echo "endpoints (took $(($(date +%s) - start_all))s):"
  print_endpoints "${names[@]}"
  if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}"
    exit 1
  fi
}

cmd_stop() {
  local name
  for name in "$@"; do stop_service "$name"; done
}

cmd_status() {
  local name down=0 state
  quick_checks "$@"
  for name in "$@"; do
    if [[ ${UP[$name]} == 1 ]]; then
      state="up   ($(owner "$name"))"
    else
      state="down"
      down=1
      our_pid "$name" >/dev/null && state="down (pid $(our_pid "$name") running: ${WHY[$name]})"
    fi
    printf '%-9s %s\n          %s\n' "$name" "$state" "$(info "$name")"
  done
  return $((down ? 3 : 0))
}

cmd_env() {
  local b
  b=$(cat "$(s3_backend_file)" 2>/dev/null || echo "$S3_BACKEND_WANTED")
  cat <<EOF
export FACTFLOW_TEST_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/
export FACTFLOW_TEST_RABBITMQ_STOMP_URL=stomp://guest:guest@127.0.0.1:$RABBITMQ_STOMP_PORT
export FACTFLOW_TEST_STOMP_URL=stomp://artemis:artemis@127.0.0.1:$ARTEMIS_STOMP_PORT
export FACTFLOW_TEST_ARTEMIS_URL=tcp://artemis:artemis@127.0.0.1:$ARTEMIS_PORT
export FACTFLOW_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export FACTFLOW_TEST_PULSAR_URL=pulsar://127.0.0.1:$PULSAR_PORT
export FACTFLOW_TEST_PULSAR_ADMIN_URL=http://127.0.0.1:$PULSAR_HTTP_PORT
export FACTFLOW_TEST_S3_ENDPOINT=127.0.0.1:$S3_PORT
export FACTFLOW_TEST_S3_ACCESS_KEY=minioadmin
export FACTFLOW_TEST_S3_SECRET_KEY=minioadmin
export FACTFLOW_TEST_S3_BACKEND=$b
EOF
}

usage() { sed -n '2,/^set -E/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || { usage; exit 2; }
  shift
  local names=("$@") n
  ((${#names[@]})) || names=("${ALL_SERVICES[@]}")
  for n in "${names[@]}"; do
    [[ " ${ALL_SERVICES[*]} " == *" $n "* ]] || die "unknown service '$n' (known: ${ALL_SERVICES[*]})"
  done
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$FF_HOME/downloads"
  case $cmd in
    start) cmd_start "${names[@]}" ;;
    stop) cmd_stop "${names[@]}" ;;
    status) cmd_status "${names[@]}" ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
