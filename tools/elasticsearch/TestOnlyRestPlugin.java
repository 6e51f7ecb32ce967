// TEST-ONLY. Stands in for the Elasticsearch modules Maven Central does not
// publish (rest-root for GET /, data-streams for /_data_stream), so that
// apmtel's tests can run against a node started from Central's jars. It is
// never part of apmtel and implements only what the tests use: GET|HEAD /,
// PUT /_data_stream/{name}, GET /_data_stream[/{name}] (names and backing
// indices) and DELETE /_data_stream/{pattern}. Tied to 8.19's internal APIs.
package apmtel.testonly;

import static org.elasticsearch.rest.RestRequest.Method.DELETE;
import static org.elasticsearch.rest.RestRequest.Method.GET;
import static org.elasticsearch.rest.RestRequest.Method.HEAD;
import static org.elasticsearch.rest.RestRequest.Method.PUT;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.elasticsearch.Build;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.admin.indices.create.AutoCreateAction;
import org.elasticsearch.action.admin.indices.create.CreateIndexRequest;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.ClusterStateUpdateTask;
import org.elasticsearch.cluster.metadata.DataStream;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.cluster.metadata.MetadataDeleteIndexService;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.Index;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

public class TestOnlyRestPlugin extends Plugin implements ActionPlugin {
  private volatile ClusterService clusterService;
  private volatile Settings settings;

  @Override
  public Collection<?> createComponents(PluginServices services) {
    clusterService = services.clusterService();
    settings = services.environment().settings();
    return List.of();
  }

  @Override
  public Collection<RestHandler> getRestHandlers(Settings s, NamedWriteableRegistry registry, RestController controller,
      ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings, SettingsFilter filter,
      IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes, Predicate<NodeFeature> features) {
    return List.of(new Root(), new DataStreams());
  }

  /** Marks every parameter consumed: the stand-ins accept and ignore timeouts and the like. */
  private static void consumeAll(RestRequest r) {
    for (String k : new ArrayList<>(r.params().keySet())) r.param(k);
  }

  private static void fail(RestChannel ch, Exception e) {
    try {
      ch.sendResponse(new RestResponse(ch, e));
    } catch (Exception inner) {
      e.addSuppressed(inner);
      throw new RuntimeException(e);
    }
  }

  /** GET / as the rest-root module answers it. */
  class Root extends BaseRestHandler {
    @Override public String getName() { return "apmtel_test_only_main"; }
    @Override public List<Route> routes() { return List.of(new Route(GET, "/"), new Route(HEAD, "/")); }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
      consumeAll(request);
      return ch -> {
        if (request.method() == HEAD) {
          ch.sendResponse(new RestResponse(RestStatus.OK, "application/json", ""));
          return;
        }
        ClusterState state = clusterService.state();
        Build b = Build.current();
        XContentBuilder x = ch.newBuilder();
        x.startObject();
        x.field("name", clusterService.localNode().getName());
        x.field("cluster_name", clusterService.getClusterName().value());
        x.field("cluster_uuid", state.metadata().clusterUUID());
        x.startObject("version");
        x.field("number", b.qualifiedVersion());
        x.field("build_flavor", b.flavor());
        x.field("build_type", b.type().displayName());
        x.field("build_hash", b.hash());
        x.field("build_date", b.date());
        x.field("build_snapshot", b.isSnapshot());
        x.field("lucene_version", org.apache.lucene.util.Version.LATEST.toString());
        x.field("minimum_wire_compatibility_version", b.minWireCompatVersion());
        x.field("minimum_index_compatibility_version", b.minIndexCompatVersion());
        x.endObject();
        x.field("tagline", "You Know, for Search");
        x.endObject();
        ch.sendResponse(new RestResponse(RestStatus.OK, x));
      };
    }
  }

  /** The subset of the data-streams module's REST API the tests use. */
  class DataStreams extends BaseRestHandler {
    @Override public String getName() { return "apmtel_test_only_data_streams"; }

    @Override
    public List<Route> routes() {
      return List.of(new Route(PUT, "/_data_stream/{name}"), new Route(GET, "/_data_stream"),
          new Route(GET, "/_data_stream/{name}"), new Route(DELETE, "/_data_stream/{name}"));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
      String name = request.param("name", "*");
      consumeAll(request);
      switch (request.method()) {
        case PUT:
          return ch -> {
            CreateIndexRequest cr = new CreateIndexRequest(name).requireDataStream(true);
            client.execute(AutoCreateAction.INSTANCE, cr, ActionListener.wrap(r -> acknowledged(ch), e -> fail(ch, e)));
          };
        case DELETE:
          return ch -> clusterService.submitUnbatchedStateUpdateTask("apmtel-test-only-delete-data-stream",
              new ClusterStateUpdateTask() {
                @Override
                public ClusterState execute(ClusterState current) {
                  Set<Index> backing = new HashSet<>();
                  Metadata.Builder md = Metadata.builder(current.metadata());
                  for (DataStream ds : current.metadata().dataStreams().values()) {
                    if (Regex.simpleMatch(name, ds.getName())) {
                      backing.addAll(ds.getIndices());
                      backing.addAll(ds.getFailureIndices());
                      md.removeDataStream(ds.getName());
                    }
                  }
                  ClusterState next = ClusterState.builder(current).metadata(md).build();
                  return backing.isEmpty() ? next : MetadataDeleteIndexService.deleteIndices(next, backing, settings);
                }

                @Override public void onFailure(Exception e) { fail(ch, e); }

                @Override
                public void clusterStateProcessed(ClusterState before, ClusterState after) { acknowledged(ch); }
              });
        default:
          return ch -> {
            XContentBuilder x = ch.newBuilder();
            x.startObject().startArray("data_streams");
            for (DataStream ds : clusterService.state().metadata().dataStreams().values()) {
              if (!Regex.simpleMatch(name, ds.getName())) continue;
              x.startObject();
              x.field("name", ds.getName());
              x.startObject("timestamp_field").field("name", "@timestamp").endObject();
              x.startArray("indices");
              for (Index i : ds.getIndices()) {
                x.startObject().field("index_name", i.getName()).field("index_uuid", i.getUUID()).endObject();
              }
              x.endArray();
              x.field("generation", ds.getGeneration());
              x.field("hidden", ds.isHidden());
              x.endObject();
            }
            x.endArray().endObject();
            ch.sendResponse(new RestResponse(RestStatus.OK, x));
          };
      }
    }

    private void acknowledged(RestChannel ch) {
      try {
        XContentBuilder x = ch.newBuilder();
        x.startObject().field("acknowledged", true).endObject();
        ch.sendResponse(new RestResponse(RestStatus.OK, x));
      } catch (Exception e) {
        fail(ch, e);
      }
    }
  }
}
