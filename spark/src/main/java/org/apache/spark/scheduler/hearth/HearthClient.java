package org.apache.spark.scheduler.hearth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A small client for the hearth masters' HTTP/1.1 JSON API ({@code /v1/apps...}).
 *
 * <p>Every master answers every route; a standby answers 307 (or 503 when it knows no leader)
 * with {@code {"code":"NOT_LEADER","leader":"host:port"}}. The client follows the leader itself
 * (same method, same body), walks the address list when a master does not answer, and retries
 * {@code MAYBE_APPLIED} (every route is idempotent or exactly-once) until a deadline. Only the JDK
 * and Jackson are used; the JDK client is pinned to HTTP/1.1 because the masters also serve gRPC
 * (HTTP/2) on the same port.
 */
public final class HearthClient {
  private static final Logger LOG = LoggerFactory.getLogger(HearthClient.class);
  private static final ObjectMapper MAPPER = new ObjectMapper();

  /** The master answered, and said no (4xx other than a redirect or MAYBE_APPLIED). */
  public static final class ApiException extends Exception {
    public final int status;
    public final String code;
    public final String serverMessage;
    public final String address;

    ApiException(int status, String code, String serverMessage, String address) {
      super("hearth at " + address + " answered " + status
          + (code == null ? "" : " " + code) + ": " + serverMessage);
      this.status = status;
      this.code = code;
      this.serverMessage = serverMessage;
      this.address = address;
    }

    public boolean isAuth() {
      return status == 401 || status == 403;
    }
  }

  /** No master gave a usable answer before the deadline. */
  public static final class UnreachableException extends Exception {
    public final List<String> tried;
    public final String lastError;

    UnreachableException(List<String> tried, String lastError) {
      super("no hearth master answered (tried " + String.join(", ", tried) + "); last error: "
          + lastError);
      this.tried = tried;
      this.lastError = lastError;
    }
  }

  private final List<String> addresses;
  private final String token;
  private final long requestTimeoutMs;
  private final HttpClient http;
  /** {@code http://}, or {@code https://} with TLS. */
  private final String scheme;
  /** The address that last answered 200, or the leader a standby named. */
  private volatile String preferred;

  public HearthClient(List<String> addresses, String token, long requestTimeoutMs) {
    this(addresses, token, requestTimeoutMs, null);
  }

  /** As above; with {@code tls}, every request goes over HTTPS with that (mutual) TLS context. */
  public HearthClient(List<String> addresses, String token, long requestTimeoutMs,
      javax.net.ssl.SSLContext tls) {
    if (addresses.isEmpty()) {
      throw new IllegalArgumentException("no hearth master address");
    }
    this.addresses = List.copyOf(addresses);
    this.token = token == null || token.isEmpty() ? null : token;
    this.requestTimeoutMs = Math.max(100, requestTimeoutMs);
    this.scheme = tls == null ? "http://" : "https://";
    HttpClient.Builder builder = HttpClient.newBuilder();
    if (tls != null) {
      builder.sslContext(tls);
    }
    this.http = builder
        .version(HttpClient.Version.HTTP_1_1)
        .followRedirects(HttpClient.Redirect.NEVER)
        .connectTimeout(Duration.ofMillis(Math.min(this.requestTimeoutMs, 2000)))
        .build();
  }

  /**
   * The addresses of a master URL: {@code spark+hearth://h1:p1,h2:p2} or {@code hearth://h1:p1}.
   */
  public static List<String> parseMasters(String url) {
    String rest = url.trim();
    for (String prefix : HearthClusterManager.PREFIXES) {
      if (rest.toLowerCase(Locale.ROOT).startsWith(prefix)) {
        rest = rest.substring(prefix.length());
        break;
      }
    }
    int slash = rest.indexOf('/');
    if (slash >= 0) {
      rest = rest.substring(0, slash);
    }
    List<String> out = new ArrayList<>();
    for (String part : rest.split(",")) {
      String a = part.trim();
      if (!a.isEmpty()) {
        out.add(a);
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("no master address in " + url
          + " (expected spark+hearth://host:port[,host:port...])");
    }
    return out;
  }

  public List<String> addresses() {
    return addresses;
  }

  /** The master that answered last (the leader, as far as this client knows). */
  public String leader() {
    String p = preferred;
    return p == null ? addresses.get(0) : p;
  }

  public static ObjectNode object() {
    return JsonNodeFactory.instance.objectNode();
  }

  /** A POST; {@code body} null sends {@code {}}. */
  public JsonNode post(String path, JsonNode body, long deadlineNanos)
      throws ApiException, UnreachableException, InterruptedException {
    return call("POST", path, body == null ? object() : body, deadlineNanos, requestTimeoutMs);
  }

  /** A POST whose attempts each wait at most {@code attemptTimeoutMs} for an answer. */
  public JsonNode post(String path, JsonNode body, long deadlineNanos, long attemptTimeoutMs)
      throws ApiException, UnreachableException, InterruptedException {
    return call("POST", path, body == null ? object() : body, deadlineNanos, attemptTimeoutMs);
  }

  public JsonNode get(String path, long deadlineNanos, long attemptTimeoutMs)
      throws ApiException, UnreachableException, InterruptedException {
    return call("GET", path, null, deadlineNanos, attemptTimeoutMs);
  }

  /**
   * Sends one request until a master answers it for good or {@code deadlineNanos} (a
   * {@link System#nanoTime()} value) passes. At least one attempt is made; each waits at most
   * {@code attemptTimeoutMs} (capped by the client's request timeout) before the next address
   * is tried, so a frozen master does not hold up the others.
   */
  public JsonNode call(String method, String path, JsonNode body, long deadlineNanos,
      long attemptTimeoutMs) throws ApiException, UnreachableException, InterruptedException {
    byte[] bytes;
    try {
      bytes = body == null ? null : MAPPER.writeValueAsBytes(body);
    } catch (IOException e) {
      throw new IllegalStateException("cannot encode a request body", e);
    }
    Set<String> tried = new LinkedHashSet<>();
    String lastError = "none";
    // Where to send next: a leader hint if we have one, else the next address of the list.
    String hint = preferred;
    int cursor = hint == null ? 0 : Math.max(0, addresses.indexOf(hint));
    int failuresInRow = 0;
    int hops = 0;
    long backoffMs = 100;
    while (true) {
      String target;
      if (hint != null) {
        target = hint;
        hint = null;
      } else {
        target = addresses.get(Math.floorMod(cursor, addresses.size()));
        cursor++;
      }
      tried.add(target);
      long remainingMs = (deadlineNanos - System.nanoTime()) / 1_000_000;
      long timeoutMs = Math.max(100,
          Math.min(Math.min(requestTimeoutMs, attemptTimeoutMs), remainingMs));
      boolean failed;
      try {
        HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(scheme + target + path))
            .timeout(Duration.ofMillis(timeoutMs))
            .header("Accept", "application/json");
        if (token != null) {
          rb.header("Authorization", "Bearer " + token);
        }
        if (bytes != null) {
          rb.header("Content-Type", "application/json");
          rb.method(method, HttpRequest.BodyPublishers.ofByteArray(bytes));
        } else {
          rb.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<byte[]> resp = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        int status = resp.statusCode();
        JsonNode json = parse(resp.body());
        if (status >= 200 && status < 300) {
          preferred = target;
          return json;
        }
        String code = text(json, "code");
        String error = text(json, "error");
        String leader = normalize(text(json, "leader"));
        if (leader == null && status >= 300 && status < 400) {
          leader = fromLocation(resp.headers().firstValue("Location"));
        }
        String what = status + (code == null ? "" : " " + code)
            + (error == null ? "" : ": " + error);
        if (leader != null && !leader.equals(target) && hops < 4 * addresses.size()
            && (status == 503 || (status >= 300 && status < 400) || "NOT_LEADER".equals(code))) {
          // A standby naming the leader: re-send the same request there at once.
          LOG.debug("hearth {} is not the leader, following it to {}", target, leader);
          hint = leader;
          hops++;
          lastError = target + " answered " + what;
          continue;
        }
        if ("MAYBE_APPLIED".equals(code)) {
          // The write may or may not have happened; every route is safe to re-send.
          LOG.warn("hearth {} answered {} to {} {}; sending it again", target, what, method, path);
          lastError = target + " answered " + what;
          hint = target;
          failed = true;
        } else if (status >= 400 && status < 500 && status != 408 && status != 429) {
          throw new ApiException(status, code,
              error != null ? error : new String(resp.body(), java.nio.charset.StandardCharsets.UTF_8),
              target);
        } else {
          // 503 NOT_LEADER without a leader, UNAVAILABLE, other 5xx, a redirect loop.
          lastError = target + " answered " + what;
          if (preferred != null && preferred.equals(target)) {
            preferred = null;
          }
          failed = true;
        }
      } catch (IOException | IllegalArgumentException e) {
        lastError = target + ": " + describe(e);
        if (target.equals(preferred)) {
          preferred = null;
        }
        failed = true;
      }
      if (failed) {
        failuresInRow++;
        if (System.nanoTime() - deadlineNanos >= 0) {
          throw new UnreachableException(new ArrayList<>(tried), lastError);
        }
        // Pause after a whole round of the list failed, not between its addresses.
        if (failuresInRow % addresses.size() == 0 || hint != null) {
          long sleepMs = Math.min(backoffMs, Math.max(0, (deadlineNanos - System.nanoTime()) / 1_000_000));
          Thread.sleep(sleepMs);
          backoffMs = Math.min(1000, backoffMs * 2);
          hops = 0;
        }
      }
    }
  }

  private static JsonNode parse(byte[] body) {
    if (body == null || body.length == 0) {
      return object();
    }
    try {
      return MAPPER.readTree(body);
    } catch (IOException e) {
      return object();
    }
  }

  static String text(JsonNode json, String field) {
    JsonNode n = json == null ? null : json.get(field);
    return n == null || n.isNull() ? null : n.asText();
  }

  /** {@code host:port} from {@code host:port}, {@code http://host:port/...}. */
  private static String normalize(String leader) {
    if (leader == null || leader.isBlank()) {
      return null;
    }
    String l = leader.trim();
    int scheme = l.indexOf("://");
    if (scheme >= 0) {
      l = l.substring(scheme + 3);
    }
    int slash = l.indexOf('/');
    if (slash >= 0) {
      l = l.substring(0, slash);
    }
    return l.isEmpty() ? null : l;
  }

  private static String fromLocation(Optional<String> location) {
    if (location.isEmpty()) {
      return null;
    }
    try {
      URI u = URI.create(location.get());
      return u.getRawAuthority() == null ? null : u.getRawAuthority();
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  private static String describe(Throwable e) {
    String m = e.getMessage();
    Throwable c = e.getCause();
    while ((m == null || m.isEmpty()) && c != null) {
      m = c.getMessage();
      c = c.getCause();
    }
    if (m == null && e instanceof java.net.ConnectException) {
      m = "connection refused";
    }
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }
}
