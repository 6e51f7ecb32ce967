// Starts a one-node Elasticsearch 8.19 for apmtel's tests from the jars
// Maven Central publishes (pom.xml). Compiled, not run as a single-file
// program: Node(NodeConstruction) and NodeServiceProvider are
// package-private, hence the package.
//
//   javac -cp 'lib/*' -d classes Launch.java TestOnlyRestPlugin.java
//   java -cp 'classes:lib/*' org.elasticsearch.node.Launch DIR HTTP_PORT
//
// Plugins are loaded as classes through the test framework's
// MockPluginsService (the distribution's plugin directories do not exist
// here): netty4 for HTTP, x-pack-core for _license, and the test-only
// TestOnlyRestPlugin for the GET / and _data_stream handlers whose modules
// are not published.
package org.elasticsearch.node;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

public class Launch {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: Launch DIR HTTP_PORT");
      System.exit(2);
    }
    String base = args[0];
    int port = Integer.parseInt(args[1]);
    Path home = Path.of(base).toAbsolutePath();
    Settings settings = Settings.builder()
        .put("path.home", home.toString())
        .put("path.data", home.resolve("data").toString())
        .put("path.logs", home.resolve("logs").toString())
        // Never join another test node on this machine.
        .put("cluster.name", "apmtel-test-es-" + port)
        .put("node.name", "apmtel-test-es")
        .put("discovery.type", "single-node")
        .put("network.host", "127.0.0.1")
        .put("http.port", port)
        .put("transport.port", 0)
        .put("http.type", "netty4")
        .put("transport.type", "netty4")
        .put("cluster.routing.allocation.disk.threshold_enabled", false)
        // Tests clean up their indices by prefix (testenv.Prefix).
        .put("action.destructive_requires_name", false)
        .put("xpack.security.enabled", false)
        .put("logger.level", "WARN")
        .build();
    LogConfigurator.configureWithoutConfig(settings);
    Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "apmtel-test-es");
    List<Class<? extends Plugin>> plugins = List.of(
        org.elasticsearch.transport.netty4.Netty4Plugin.class,
        org.elasticsearch.xpack.core.XPackPlugin.class,
        apmtel.testonly.TestOnlyRestPlugin.class);
    NodeServiceProvider provider = new NodeServiceProvider() {
      @Override
      PluginsService newPluginService(Environment e, PluginsLoader loader) {
        return new MockPluginsService(e.settings(), e, plugins);
      }
    };
    Node node;
    try {
      node = new Node(NodeConstruction.prepareConstruction(env, null, provider, true));
      node.start();
    } catch (Throwable t) {
      t.printStackTrace();
      System.exit(1);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        node.close();
        node.awaitClose(20, TimeUnit.SECONDS);
      } catch (Exception e) { /* exiting anyway */ }
    }));
    System.out.println("elasticsearch started on 127.0.0.1:" + port);
    Thread.currentThread().join();
  }
}
