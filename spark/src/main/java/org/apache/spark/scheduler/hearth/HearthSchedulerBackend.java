package org.apache.spark.scheduler.hearth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkException;
import org.apache.spark.launcher.JavaModuleOptions;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.rpc.RpcEndpointAddress;
import org.apache.spark.scheduler.ExecutorProcessLost;
import org.apache.spark.scheduler.TaskSchedulerImpl;
import org.apache.spark.scheduler.cluster.CoarseGrainedSchedulerBackend;
import org.apache.spark.util.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;
import scala.Tuple2;
import scala.concurrent.Future;
import scala.concurrent.Promise;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Runs a SparkContext's executors on a hearth cluster: registers the app with the masters'
 * JSON API, heartbeats it, follows its executors, asks for more or fewer and finishes it on
 * stop. The executors are Spark's own {@code CoarseGrainedExecutorBackend} JVMs, launched by
 * hearth workers with the command built here; they register with the driver as usual.
 */
public class HearthSchedulerBackend extends CoarseGrainedSchedulerBackend {
  private static final Logger LOG = LoggerFactory.getLogger(HearthSchedulerBackend.class);

  static final String CONF_TOKEN = "spark.hearth.token";
  static final String CONF_SECRET_FILE = "spark.hearth.secretFile";
  static final String CONF_TLS_CERT = "spark.hearth.tls.cert";
  static final String CONF_TLS_KEY = "spark.hearth.tls.key";
  static final String CONF_TLS_CA = "spark.hearth.tls.ca";
  static final String CONF_CONNECT_TIMEOUT = "spark.hearth.connectTimeout";
  static final String CONF_FAILOVER_TIMEOUT = "spark.hearth.failoverTimeout";
  static final String CONF_REQUEST_TIMEOUT = "spark.hearth.requestTimeout";
  static final String CONF_JAVA_HOME = "spark.hearth.executor.javaHome";
  static final String CONF_SPARK_HOME = "spark.hearth.executor.sparkHome";
  static final String CONF_COMMAND = "spark.hearth.executor.command";
  static final String CONF_MAX_FAILURES = "spark.hearth.maxExecutorFailures";

  private static final Set<String> END_APP_STATES = Set.of("FINISHED", "FAILED", "KILLED");
  private static final Set<String> END_EXECUTOR_STATES =
      Set.of("KILLED", "FAILED", "LOST", "EXITED", "DECOMMISSIONED");

  private final TaskSchedulerImpl taskScheduler;
  private final SparkContext sc;
  private final String masterUrl;
  private final long connectTimeoutMs;
  private final long failoverTimeoutMs;
  private final long requestTimeoutMs;
  private final int maxExecutorFailures;

  private HearthClient client;
  /** Guards appId/pendingTotal and the order of requests handed to {@link #requests}. */
  private final Object lock = new Object();
  private volatile String appId;
  private Integer pendingTotal;
  /** Total/kill requests, one at a time and in Spark's order, off Spark's own threads. */
  private final ExecutorService requests = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "hearth-requests");
    t.setDaemon(true);
    return t;
  });
  private Thread monitor;
  private long heartbeatIntervalMs = 1000;

  /** Executors Spark asked hearth to kill: their end is not news to Spark. */
  private final Set<Integer> killRequested = ConcurrentHashMap.newKeySet();
  /** Monitor thread only: executors seen alive in the last answer, and those reported lost. */
  private final Map<Integer, String[]> liveExecutors = new HashMap<>();
  private final Set<Integer> reportedLost = new HashSet<>();
  /** Executors ended (not killed by Spark) since Spark last had one registered. */
  private int failuresInRow = 0;

  private final AtomicBoolean stopped = new AtomicBoolean(false);
  /** Counted down once stop() has told hearth (or given up); the shutdown hook waits for it. */
  private final CountDownLatch finished = new CountDownLatch(1);
  private Thread shutdownHook;
  private volatile boolean stopping = false;
  private volatile String deadReason;
  private volatile int exitCode = 0;

  public HearthSchedulerBackend(TaskSchedulerImpl scheduler, SparkContext sc, String masterUrl) {
    super(scheduler, sc.env().rpcEnv());
    this.taskScheduler = scheduler;
    this.sc = sc;
    this.masterUrl = masterUrl;
    SparkConf conf = sc.conf();
    this.connectTimeoutMs = conf.getTimeAsMs(CONF_CONNECT_TIMEOUT, "30s");
    this.failoverTimeoutMs = conf.getTimeAsMs(CONF_FAILOVER_TIMEOUT, "120s");
    this.requestTimeoutMs = conf.getTimeAsMs(CONF_REQUEST_TIMEOUT, "5s");
    this.maxExecutorFailures = conf.getInt(CONF_MAX_FAILURES, 10);
  }

  /**
   * The cluster's secret, sent as {@code Authorization: Bearer}: {@code spark.hearth.token}
   * or {@code HEARTH_TOKEN}, else the contents of the file {@code spark.hearth.secretFile}
   * or {@code HEARTH_SECRET_FILE} (what {@code hearth local} prints), else none.
   */
  static String token(SparkConf conf) {
    if (conf.getOption(CONF_TOKEN).isDefined()) {
      return conf.get(CONF_TOKEN);
    }
    String env = System.getenv("HEARTH_TOKEN");
    if (env != null && !env.isEmpty()) {
      return env;
    }
    String file = conf.getOption(CONF_SECRET_FILE).isDefined()
        ? conf.get(CONF_SECRET_FILE) : System.getenv("HEARTH_SECRET_FILE");
    if (file == null || file.isEmpty()) {
      return null;
    }
    try {
      return java.nio.file.Files.readString(java.nio.file.Path.of(file)).trim();
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException("hearth: cannot read the secret file " + file
          + " (" + CONF_SECRET_FILE + " / HEARTH_SECRET_FILE): " + e, e);
    }
  }

  /**
   * Mutual TLS to the masters: {@code spark.hearth.tls.cert/key/ca}, else {@code HEARTH_TLS_CERT},
   * {@code HEARTH_TLS_KEY}, {@code HEARTH_TLS_CA} (what {@code hearth local --tls} prints); all
   * three or none. {@code null}: plain HTTP.
   */
  static javax.net.ssl.SSLContext tls(SparkConf conf) {
    String[][] keys = {
      {CONF_TLS_CERT, "HEARTH_TLS_CERT"}, {CONF_TLS_KEY, "HEARTH_TLS_KEY"}, {CONF_TLS_CA, "HEARTH_TLS_CA"}
    };
    String[] files = new String[3];
    int given = 0;
    for (int i = 0; i < 3; i++) {
      files[i] = conf.getOption(keys[i][0]).isDefined() ? conf.get(keys[i][0]) : System.getenv(keys[i][1]);
      if (files[i] != null && !files[i].isEmpty()) {
        given++;
      }
    }
    if (given == 0) {
      return null;
    }
    if (given < 3) {
      throw new IllegalArgumentException("hearth: TLS needs all three of " + CONF_TLS_CERT + ", "
          + CONF_TLS_KEY + " and " + CONF_TLS_CA + " (or HEARTH_TLS_CERT, HEARTH_TLS_KEY, HEARTH_TLS_CA)");
    }
    return HearthTls.context(java.nio.file.Path.of(files[0]), java.nio.file.Path.of(files[1]),
        java.nio.file.Path.of(files[2]));
  }

  @Override
  public String applicationId() {
    String id = appId;
    return id != null ? id : super.applicationId();
  }

  // ---------------------------------------------------------------- start

  @Override
  public void start() {
    super.start();
    SparkConf conf = sc.conf();
    List<String> addresses = HearthClient.parseMasters(masterUrl);
    String token = token(conf);
    client = new HearthClient(addresses, token, requestTimeoutMs, tls(conf));

    String driverUrl = RpcEndpointAddress.apply(
        conf.get("spark.driver.host"),
        Integer.parseInt(conf.get("spark.driver.port")),
        CoarseGrainedSchedulerBackend.ENDPOINT_NAME()).toString();

    ObjectNode body = HearthClient.object();
    body.put("name", conf.get("spark.app.name", "spark"));
    putIntOrNull(body, "executor_cores", conf, "spark.executor.cores");
    body.put("executor_memory_mb", sc.executorMemory());
    putIntOrNull(body, "max_cores", conf, "spark.cores.max");
    Integer initial = initialExecutors(conf);
    if (initial == null) {
      body.putNull("initial_executors");
    } else {
      body.put("initial_executors", initial);
    }
    body.put("driver_url", driverUrl);
    ObjectNode command = body.putObject("command");
    ArrayNode argv = command.putArray("argv");
    argv.add("/bin/sh");
    argv.add("-c");
    argv.add(executorScript(conf, driverSparkHome()));
    ObjectNode env = command.putObject("env");
    for (Map.Entry<String, String> e : CollectionConverters.asJava(sc.executorEnvs()).entrySet()) {
      env.put(e.getKey(), e.getValue());
    }

    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(connectTimeoutMs);
    JsonNode answer;
    try {
      answer = client.post("/v1/apps", body, deadline);
    } catch (HearthClient.UnreachableException e) {
      throw sneaky(new SparkException("hearth: no master reachable within "
          + connectTimeoutMs + " ms (" + CONF_CONNECT_TIMEOUT + "); tried "
          + String.join(", ", addresses) + "; last error: " + e.lastError));
    } catch (HearthClient.ApiException e) {
      if (e.isAuth()) {
        throw sneaky(new SparkException(
            "hearth refused the token (" + CONF_TOKEN + " / HEARTH_TOKEN): " + e.serverMessage
                + (token == null ? " (no token is set)" : "")));
      }
      throw sneaky(new SparkException("hearth refused to register the application ("
          + e.status + (e.code == null ? "" : " " + e.code) + "): " + e.serverMessage));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw sneaky(new SparkException("interrupted while registering with hearth", e));
    }
    String id = HearthClient.text(answer, "app_id");
    if (id == null || id.isEmpty()) {
      throw sneaky(new SparkException("hearth answered the registration without an app_id: "
          + answer));
    }
    long interval = answer.path("heartbeat_interval_ms").asLong(1000);
    heartbeatIntervalMs = interval > 0 ? interval : 1000;
    LOG.info("Registered with hearth as {} (leader {}, driver {}, heartbeat every {} ms)",
        id, client.leader(), driverUrl, heartbeatIntervalMs);
    synchronized (lock) {
      appId = id;
      if (pendingTotal != null) {
        submitTotal(pendingTotal);
        pendingTotal = null;
      }
    }
    monitor = new Thread(this::monitorLoop, "hearth-app-monitor");
    monitor.setDaemon(true);
    monitor.start();
    // A context stopped from a daemon thread (sc.stopInNewThread) may race the JVM's exit:
    // let the exit wait a few seconds for the app's finish to reach hearth.
    shutdownHook = new Thread(() -> {
      if (stopped.get()) {
        try {
          finished.await(7, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }, "hearth-finish-wait");
    try {
      Runtime.getRuntime().addShutdownHook(shutdownHook);
    } catch (IllegalStateException e) {
      shutdownHook = null;
    }
  }

  private static void putIntOrNull(ObjectNode body, String field, SparkConf conf, String key) {
    Option<String> v = conf.getOption(key);
    if (v.isDefined()) {
      body.put(field, Integer.parseInt(v.get().trim()));
    } else {
      body.putNull(field);
    }
  }

  private static Integer initialExecutors(SparkConf conf) {
    if (Utils.isDynamicAllocationEnabled(conf)) {
      return Utils.getDynamicAllocationInitialExecutors(conf);
    }
    Option<String> n = conf.getOption("spark.executor.instances");
    return n.isDefined() ? Integer.valueOf(Integer.parseInt(n.get().trim())) : null;
  }

  private String driverSparkHome() {
    String home = System.getenv("SPARK_HOME");
    if (home != null && !home.isEmpty()) {
      return home;
    }
    Option<String> h = sc.getSparkHome();
    return h.isDefined() ? h.get() : null;
  }

  // ---------------------------------------------------------------- executor command

  /** A word the shell passes through untouched. */
  static String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }

  /**
   * Quotes one word but lets Spark's executor placeholders expand from the worker's
   * environment: {{APP_ID}}, {{EXECUTOR_ID}}, {{HOSTNAME}}, {{CORES}}.
   */
  static String quoteWithPlaceholders(String s) {
    String[][] vars = {
      {"{{APP_ID}}", "\"$HEARTH_APP_ID\""},
      {"{{EXECUTOR_ID}}", "\"$HEARTH_EXECUTOR_ID\""},
      {"{{HOSTNAME}}", "\"$HEARTH_HOST\""},
      {"{{CORES}}", "\"$HEARTH_CORES\""},
    };
    StringBuilder out = new StringBuilder();
    StringBuilder literal = new StringBuilder();
    int i = 0;
    outer:
    while (i < s.length()) {
      for (String[] v : vars) {
        if (s.startsWith(v[0], i)) {
          if (literal.length() > 0) {
            out.append(quote(literal.toString()));
            literal.setLength(0);
          }
          out.append(v[1]);
          i += v[0].length();
          continue outer;
        }
      }
      literal.append(s.charAt(i));
      i++;
    }
    if (literal.length() > 0 || out.length() == 0) {
      out.append(quote(literal.toString()));
    }
    return out.toString();
  }

  /** The {@code sh -c} script a worker runs for each executor. */
  static String executorScript(SparkConf conf, String driverSparkHome) {
    Option<String> verbatim = conf.getOption(CONF_COMMAND);
    if (verbatim.isDefined() && !verbatim.get().trim().isEmpty()) {
      return verbatim.get();
    }
    StringBuilder sb = new StringBuilder();
    // SPARK_HOME: the conf, else the worker's environment, else the driver's.
    Option<String> sparkHome = conf.getOption(CONF_SPARK_HOME);
    if (sparkHome.isDefined() && !sparkHome.get().isEmpty()) {
      sb.append("SPARK_HOME=").append(quote(sparkHome.get())).append('\n');
    } else if (driverSparkHome != null) {
      sb.append("if [ -z \"${SPARK_HOME:-}\" ]; then SPARK_HOME=")
          .append(quote(driverSparkHome)).append("; fi\n");
    } else {
      sb.append("if [ -z \"${SPARK_HOME:-}\" ]; then echo 'hearth: SPARK_HOME is not set on this"
          + " worker; set " + CONF_SPARK_HOME + "' >&2; exit 127; fi\n");
    }
    sb.append("export SPARK_HOME\n");
    Option<String> javaHome = conf.getOption(CONF_JAVA_HOME);
    if (javaHome.isDefined() && !javaHome.get().isEmpty()) {
      sb.append("JAVA=").append(quote(javaHome.get() + "/bin/java")).append('\n');
    } else {
      sb.append("if [ -n \"${JAVA_HOME:-}\" ]; then JAVA=\"$JAVA_HOME/bin/java\"; else JAVA=java; fi\n");
    }
    Option<String> libPath = conf.getOption("spark.executor.extraLibraryPath");
    if (libPath.isDefined() && !libPath.get().isEmpty()) {
      sb.append("LD_LIBRARY_PATH=").append(quote(libPath.get()))
          .append("\"${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"; export LD_LIBRARY_PATH\n");
    }
    // The worker names its host in HEARTH_HOST; an older worker may not.
    sb.append(": \"${HEARTH_HOST:=$(hostname)}\"\n");
    sb.append("exec \"$JAVA\" -cp ");
    Option<String> extraCp = conf.getOption("spark.executor.extraClassPath");
    if (extraCp.isDefined() && !extraCp.get().isEmpty()) {
      sb.append(quote(extraCp.get() + ":"));
    }
    sb.append("\"$SPARK_HOME/jars/*\"");
    sb.append(" \"-Xmx${HEARTH_MEMORY_MB}m\"");
    for (String opt : JavaModuleOptions.defaultModuleOptionArray()) {
      sb.append(' ').append(quote(opt));
    }
    // What Spark's own launchers pass at executor start (spark.rpc.*, spark.network.*, ports...).
    for (Tuple2<String, String> kv : conf.getAll()) {
      if (SparkConf.isExecutorStartupConf(kv._1())) {
        sb.append(' ').append(quote("-D" + kv._1() + "=" + kv._2()));
      }
    }
    Option<String> extraOpts = conf.getOption("spark.executor.extraJavaOptions");
    if (extraOpts.isDefined() && !extraOpts.get().trim().isEmpty()) {
      for (String word : CollectionConverters.asJava(Utils.splitCommandString(extraOpts.get()))) {
        sb.append(' ').append(quoteWithPlaceholders(word));
      }
    }
    sb.append(" org.apache.spark.executor.CoarseGrainedExecutorBackend")
        .append(" --driver-url \"$HEARTH_DRIVER_URL\"")
        .append(" --executor-id \"$HEARTH_EXECUTOR_ID\"")
        .append(" --hostname \"$HEARTH_HOST\"")
        .append(" --cores \"$HEARTH_CORES\"")
        .append(" --app-id \"$HEARTH_APP_ID\"")
        .append(" --resourceProfileId 0\n");
    return sb.toString();
  }

  // ---------------------------------------------------------------- monitor

  private void monitorLoop() {
    String id = appId;
    String tokenRefused = "hearth refused the token (" + CONF_TOKEN + " / HEARTH_TOKEN): ";
    long lastContact = System.nanoTime();
    long lastWarn = 0;
    boolean degraded = false;
    String leader = client.leader();
    while (!stopping && deadReason == null) {
      try {
        Thread.sleep(heartbeatIntervalMs);
        if (stopping) {
          break;
        }
        // A frozen master must not hold the heartbeat up for long: hearth fails an app that
        // stays silent for its app timeout (the advised interval is a quarter of it, at most).
        long attemptMs = Math.min(requestTimeoutMs, Math.max(1000, 2 * heartbeatIntervalMs));
        long budget = Math.max(3 * attemptMs, heartbeatIntervalMs);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(budget);
        // The heartbeat: a "no" (exists=false, 409) is confirmed by the GET below, which
        // also says how the app ended.
        String refusal = null;
        try {
          JsonNode hb = client.post("/v1/apps/" + id + "/heartbeat", null, deadline, attemptMs);
          JsonNode exists = hb.get("exists");
          if (exists != null && !exists.asBoolean(true)) {
            refusal = "hearth no longer knows app " + id + " (heartbeat: exists=false)";
          }
        } catch (HearthClient.ApiException e) {
          if (e.isAuth()) {
            dead(tokenRefused + e.serverMessage);
            break;
          }
          refusal = "hearth refused the heartbeat of app " + id + ": " + e.serverMessage;
        }
        lastContact = System.nanoTime();
        JsonNode app;
        try {
          app = client.get("/v1/apps/" + id,
              Math.max(deadline, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(attemptMs)),
              attemptMs);
        } catch (HearthClient.ApiException e) {
          if (e.isAuth()) {
            dead(tokenRefused + e.serverMessage);
          } else if (e.status == 404) {
            dead("hearth no longer knows app " + id + ": " + e.serverMessage);
          } else if (refusal != null) {
            dead(refusal);
          } else {
            LOG.warn("hearth refused to show app {}: {}", id, e.getMessage());
            continue;
          }
          break;
        }
        lastContact = System.nanoTime();
        if (degraded) {
          LOG.warn("hearth answers again (leader {}); app {} carries on", client.leader(), id);
          degraded = false;
        } else if (!client.leader().equals(leader)) {
          LOG.info("hearth leader for app {} is now {}", id, client.leader());
        }
        leader = client.leader();
        String state = HearthClient.text(app, "state");
        if (state != null && END_APP_STATES.contains(state)) {
          String reason = HearthClient.text(app, "end_reason");
          dead("app " + id + " is " + state + (reason == null ? "" : ": " + reason));
          break;
        }
        if (refusal != null) {
          if (app.path("active").asBoolean(true)) {
            // The GET shows the app alive: the refusal was a passing thing; keep going.
            LOG.warn("{}; yet hearth shows it {}", refusal, state);
          } else {
            dead(refusal + "; state " + state);
            break;
          }
        }
        followExecutors(app.path("executors"));
      } catch (InterruptedException e) {
        break;
      } catch (HearthClient.UnreachableException e) {
        long silentMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastContact);
        if (silentMs >= failoverTimeoutMs) {
          dead("no hearth master answered for " + silentMs + " ms (" + CONF_FAILOVER_TIMEOUT
              + " = " + failoverTimeoutMs + " ms); last error: " + e.lastError);
          break;
        }
        degraded = true;
        if (lastWarn == 0 || System.nanoTime() - lastWarn > TimeUnit.SECONDS.toNanos(5)) {
          lastWarn = System.nanoTime();
          LOG.warn("hearth does not answer for app {} ({} ms so far, giving up after {} ms);"
              + " retrying: {}", id, silentMs, failoverTimeoutMs, e.lastError);
        }
      } catch (RuntimeException e) {
        LOG.warn("hearth app monitor of {}: unexpected error", id, e);
      }
    }
    LOG.debug("hearth app monitor of {} ends", id);
  }

  /** Tells Spark about executors hearth reports ended that Spark did not ask to kill. */
  private void followExecutors(JsonNode executors) {
    if (!executors.isArray()) {
      return;
    }
    if (totalRegisteredExecutors().get() > 0) {
      failuresInRow = 0;
    }
    Map<Integer, String[]> alive = new HashMap<>();
    for (JsonNode e : executors) {
      if (!e.hasNonNull("id")) {
        continue;
      }
      int eid = e.get("id").asInt();
      String host = HearthClient.text(e, "host");
      String state = HearthClient.text(e, "state");
      if (state != null && END_EXECUTOR_STATES.contains(state)) {
        lost(eid, host, state);
      } else {
        alive.put(eid, new String[] {host, state});
      }
    }
    for (Map.Entry<Integer, String[]> was : liveExecutors.entrySet()) {
      if (!alive.containsKey(was.getKey()) && !reportedLost.contains(was.getKey())) {
        lost(was.getKey(), was.getValue()[0], "no longer listed; was " + was.getValue()[1]);
      }
    }
    liveExecutors.clear();
    liveExecutors.putAll(alive);
  }

  private void lost(int eid, String host, String state) {
    if (!reportedLost.add(eid) || killRequested.contains(eid) || stopping) {
      return;
    }
    String message = "hearth: executor " + eid + " on " + host + " ended (" + state + ")";
    LOG.warn(message);
    removeExecutor(String.valueOf(eid),
        new ExecutorProcessLost(message, Option.apply(host), false));
    // Like Spark standalone's spark.deploy.maxExecutorRetries: executors that keep dying
    // while none is registered mean the executor command cannot work here.
    failuresInRow++;
    if (maxExecutorFailures >= 0 && failuresInRow >= maxExecutorFailures
        && totalRegisteredExecutors().get() == 0) {
      dead(failuresInRow + " executors ended and none registered with the driver ("
          + CONF_MAX_FAILURES + " = " + maxExecutorFailures + "); the last: executor " + eid
          + " on " + host + " (" + state + "); see its stderr in the hearth worker's work dir"
          + " (WORK_DIR/" + appId + "/" + eid + "/stderr)");
    }
  }

  /** hearth ended the app (or can no longer be reached): fail what runs, stop the context. */
  private void dead(String reason) {
    if (stopping || deadReason != null || sc.isStopped()) {
      return;
    }
    deadReason = reason;
    LOG.error("hearth ended the app {}: {}", appId, reason);
    try {
      taskScheduler.error("hearth ended the app: " + reason);
    } catch (Exception e) {
      // TaskSchedulerImpl.error throws (a SparkException, undeclared) when no task set is
      // active; the context stops anyway.
      LOG.debug("TaskSchedulerImpl.error", e);
    } finally {
      sc.stopInNewThread();
    }
  }

  // ---------------------------------------------------------------- executors wanted / killed

  @Override
  public Future<Object> doRequestTotalExecutors(
      scala.collection.immutable.Map<ResourceProfile, Object> resourceProfileToTotalExecs) {
    int total = 0;
    for (Map.Entry<ResourceProfile, Object> e
        : CollectionConverters.asJava(resourceProfileToTotalExecs).entrySet()) {
      int n = ((Number) e.getValue()).intValue();
      if (e.getKey().id() == ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID()) {
        total += n;
      } else if (n > 0) {
        LOG.warn("hearth supports only the default resource profile; ignoring {} executors"
            + " asked for profile {}", n, e.getKey().id());
      }
    }
    synchronized (lock) {
      if (appId == null) {
        pendingTotal = total;
        return Future.successful(Boolean.TRUE);
      }
      return submitTotal(total);
    }
  }

  private Future<Object> submitTotal(int total) {
    ObjectNode body = HearthClient.object();
    body.put("total", total);
    return submit("/executors/total", body, "set the executor total to " + total);
  }

  @Override
  public Future<Object> doKillExecutors(scala.collection.immutable.Seq<String> executorIds) {
    ObjectNode body = HearthClient.object();
    ArrayNode ids = body.putArray("executors");
    List<String> names = new ArrayList<>();
    for (String s : CollectionConverters.asJava(executorIds)) {
      try {
        int eid = Integer.parseInt(s.trim());
        killRequested.add(eid);
        ids.add(eid);
        names.add(s);
      } catch (NumberFormatException e) {
        LOG.warn("hearth: cannot kill executor {}: not a hearth executor id", s);
      }
    }
    synchronized (lock) {
      if (appId == null || ids.isEmpty()) {
        return Future.successful(Boolean.valueOf(!ids.isEmpty() && appId != null));
      }
      return submit("/executors/kill", body, "kill executors " + names);
    }
  }

  /** Sends a request on the request thread; the future says whether hearth accepted it. */
  private Future<Object> submit(String suffix, ObjectNode body, String what) {
    Promise<Object> promise = Promise.apply();
    String path = "/v1/apps/" + appId + suffix;
    long budgetMs = Math.min(failoverTimeoutMs, 60_000);
    try {
      requests.execute(() -> {
        try {
          client.post(path, body, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(budgetMs));
          LOG.info("hearth: {} for app {}", what, appId);
          promise.success(Boolean.TRUE);
        } catch (HearthClient.ApiException e) {
          LOG.error("hearth refused to {} for app {}: {}", what, appId, e.getMessage());
          promise.success(Boolean.FALSE);
        } catch (HearthClient.UnreachableException e) {
          LOG.warn("hearth: could not {} for app {}: {}", what, appId, e.getMessage());
          promise.success(Boolean.FALSE);
        } catch (InterruptedException e) {
          promise.success(Boolean.FALSE);
        } catch (RuntimeException e) {
          promise.failure(e);
        }
      });
    } catch (RejectedExecutionException e) {
      promise.success(Boolean.FALSE);
    }
    return promise.future();
  }

  // ---------------------------------------------------------------- stop

  @Override
  public void stop(int exitCode) {
    this.exitCode = exitCode;
    super.stop(exitCode);
  }

  @Override
  public void stop() {
    if (!stopped.compareAndSet(false, true)) {
      return;
    }
    stopping = true;
    Thread m = monitor;
    if (m != null && m != Thread.currentThread()) {
      m.interrupt();
      try {
        m.join(2000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    try {
      super.stop();
    } finally {
      requests.shutdownNow();
      try {
        finish();
      } finally {
        finished.countDown();
        if (shutdownHook != null && Thread.currentThread() != shutdownHook) {
          try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
          } catch (IllegalStateException e) {
            // The JVM is exiting already.
          }
        }
      }
    }
  }

  private void finish() {
    String id = appId;
    if (id == null || client == null) {
      return;
    }
    String reason = deadReason;
    String state;
    if (reason != null) {
      state = "FAILED";
    } else if (exitCode != 0) {
      state = "FAILED";
      reason = "SparkContext stopped with exit code " + exitCode;
    } else {
      state = "FINISHED";
      reason = "SparkContext stopped";
    }
    ObjectNode body = HearthClient.object();
    body.put("state", state);
    body.put("reason", reason);
    try {
      JsonNode r = client.post("/v1/apps/" + id + "/finish", body,
          System.nanoTime() + TimeUnit.SECONDS.toNanos(5), 2000);
      if (r.path("unchanged").asBoolean(false)) {
        LOG.info("hearth: app {} had ended already", id);
      } else {
        LOG.info("hearth: app {} finished ({}: {})", id, state, reason);
      }
    } catch (HearthClient.ApiException | HearthClient.UnreachableException e) {
      LOG.warn("hearth: could not finish app {} ({}): {}", id, state, e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      LOG.warn("hearth: interrupted while finishing app {}", id);
    }
  }

  @SuppressWarnings("unchecked")
  private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
    throw (E) e;
  }
}
