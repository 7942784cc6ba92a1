package org.apache.spark.scheduler.hearth;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Mutual TLS to the hearth masters: the same three PEM files every hearth process takes
 * ({@code --tls-cert}, {@code --tls-key}, {@code --tls-ca}) as a JDK {@link SSLContext}: the
 * driver shows its certificate and trusts only masters whose certificate the cluster's CA
 * signed (for the name or address it dials). Only the JDK is used.
 */
final class HearthTls {
  private HearthTls() {}

  /** The context for {@code cert} (a chain, leaf first), its PKCS#8 {@code key} and {@code ca}. */
  static SSLContext context(Path cert, Path key, Path ca) {
    try {
      CertificateFactory x509 = CertificateFactory.getInstance("X.509");
      List<Certificate> chain = certificates(x509, cert, "--tls-cert");
      List<Certificate> roots = certificates(x509, ca, "--tls-ca");
      PrivateKey privateKey = privateKey(key);
      char[] password = new char[0];
      KeyStore identity = KeyStore.getInstance("PKCS12");
      identity.load(null, null);
      identity.setKeyEntry("hearth", privateKey, password, chain.toArray(new Certificate[0]));
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(identity, password);
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      for (int i = 0; i < roots.size(); i++) {
        trust.setCertificateEntry("hearth-ca-" + i, roots.get(i));
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      return ctx;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalArgumentException("hearth: cannot use the TLS files (cert " + cert + ", key "
          + key + ", CA " + ca + "): " + e.getMessage(), e);
    }
  }

  private static List<Certificate> certificates(CertificateFactory x509, Path file, String what)
      throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(file)) {
      Collection<? extends Certificate> all = x509.generateCertificates(in);
      if (all.isEmpty()) {
        throw new GeneralSecurityException(what + " " + file + " holds no certificate");
      }
      return new ArrayList<>(all);
    }
  }

  /** A PKCS#8 PEM key ({@code BEGIN PRIVATE KEY}, as {@code hearth tls} writes): EC, RSA or Ed25519. */
  private static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
    String pem = Files.readString(file, StandardCharsets.US_ASCII);
    String begin = "-----BEGIN PRIVATE KEY-----";
    String end = "-----END PRIVATE KEY-----";
    int from = pem.indexOf(begin);
    int to = pem.indexOf(end);
    if (from < 0 || to < from) {
      throw new GeneralSecurityException("the key " + file + " is not a PKCS#8 PEM key (BEGIN PRIVATE "
          + "KEY); convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8`");
    }
    byte[] der = Base64.getMimeDecoder().decode(pem.substring(from + begin.length(), to));
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    GeneralSecurityException last = null;
    for (String algorithm : new String[] {"EC", "RSA", "Ed25519"}) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(spec);
      } catch (GeneralSecurityException e) {
        last = e;
      }
    }
    throw new GeneralSecurityException("the key " + file + " is neither EC, RSA nor Ed25519", last);
  }
}
