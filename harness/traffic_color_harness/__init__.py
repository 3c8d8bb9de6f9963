"""traffic-color's Python harness: what the demo, the end-to-end tests, the benchmark and the
soak use to run the filter in a real Envoy on loopback.

Modules:
  repo         where things are in the checkout (envoy/envoy.yaml, envoy/upstream.py, istio/, ...)
  process      child processes in their own process group, with a log file and bounded waits
  upstream     the test upstreams (envoy/upstream.py) on free ports
  envoy        Envoy on a rendered config: start and wait for /ready, run to exit, a pool
  admin        reads from Envoy's admin interface: readiness, the bound listener, counters
  envoy_config envoy/envoy.yaml loaded, navigated and rendered for loopback
  lds          an Envoy whose listener comes from a file, for config pushes
  metrics      /stats/prometheus parsed (histograms too); the config hash, from its definition
  istio_stats  the stats_config Istio's bootstrap template renders for extraStatTags
  client       requests with exactly the headers given, over http.client or raw bytes
  load         threads sending requests until stopped, every outcome recorded (pushes under load)
  tokens       unsigned JWTs, signing keys, signed JWTs and JWKS
  bucket       the rules' bucket(), from the reference MurmurHash3
  oci          the filter as an OCI image for Istio, and the digest pinned in istio/image.yaml
  registry     a minimal OCI registry on loopback (push with skopeo, pull like Istio)
  istio        Istio's part, offline: manifests, its image fetcher, the Envoy config istiod builds
  release      Argo Rollouts' and Flagger's part, offline: analysis queries, controller checks, their routes
  prometheus   a real Prometheus on loopback (scrape, rules, HTTP API) and promtool
  cockpit      an Envoy on envoy/envoy-cockpit.yaml (the filter's config by ECDS from a file) and
               `traffic-color cockpit` as a child process, with its API and events
  demo         `make demo`: the tour, then the cockpit on the same Envoy

Installed editable from the checkout (`make venv`: `pip install -e harness`).
"""
