package deploy

// The Kubernetes manifests (kubernetes/external-nats/, kubernetes/embedded/)
// and the values for the NATS chart (kubernetes/nats-values.yaml), held to
// what keeps SSE streams healthy and the cluster whole when it loses a
// machine: probes on the admin port, a grace period longer than the drain,
// a disruption budget, rollouts that never drop below the replicas, hubs or
// NATS servers on separate machines, a replicated log, non-root and
// read-only containers, secrets only from Secrets, and only flags the hub
// has.
//
// kubernetesProblems does the checking on the files' contents, so that
// TestKubernetesChecksCatch can break each rule in a copy of them and see
// it reported.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	kubernetesDir  = "kubernetes"
	natsValuesFile = "kubernetes/nats-values.yaml"
	deploymentDoc  = "../docs/deployment.md"
	readmeFile     = "../README.md"
	flagsFile      = "../cmd/eventhub/flags.go"
	hubImage       = "ghcr.io/finexbot/eventhub:latest"
)

// The two ways to run a cluster, each a directory of manifests.
const (
	externalWay = "external-nats"
	embeddedWay = "embedded"
)

// clusterFlags are the flags of a NATS cluster the manifests use, which
// cmd/eventhub/flags.go may not define yet: the check accepts them whether
// it does or not. Every other flag must be in flags.go.
var clusterFlags = []string{"nats-replicas", "nats-cluster", "nats-routes", "nats-cluster-name",
	"nats-name", "nats-cluster-user", "nats-cluster-password-file"}

// envOnly are the EVENTHUB_ variables that set no flag of their own.
var envOnly = []string{"EVENTHUB_NATS_PASSWORD", "EVENTHUB_NATS_TOKEN", "EVENTHUB_NATS_CLUSTER_PASSWORD"}

// logReplicas is how many copies of the log a cluster keeps: one machine
// may go, and two of three still take writes.
const logReplicas = 3

// TestKubernetesManifests: the manifests and the NATS values, as they are,
// break no rule.
func TestKubernetesManifests(t *testing.T) {
	files := readKubernetesFiles(t)
	for _, p := range kubernetesProblems(files) {
		t.Error(p)
	}
}

// TestKubernetesChecksCatch breaks one rule at a time in a copy of the
// files and expects kubernetesProblems to name it: each check can fail.
// Every replacement must apply exactly once, so that a change to the files
// that leaves a case testing nothing fails here instead.
func TestKubernetesChecksCatch(t *testing.T) {
	const (
		ext  = "kubernetes/external-nats/deployment.yaml"
		emb  = "kubernetes/embedded/statefulset.yaml"
		embS = "kubernetes/embedded/service.yaml"
	)
	cases := []breakCase{
		{"readiness on the public port", ext, "path: /readyz\n              port: admin", "path: /readyz\n              port: http", "readiness probe"},
		{"readiness on another path", emb, "path: /readyz", "path: /healthz", "readiness probe"},
		{"liveness on another path", ext, "livenessProbe:\n            httpGet:\n              path: /healthz", "livenessProbe:\n            httpGet:\n              path: /readyz", "liveness probe"},
		{"grace shorter than the drain", ext, "- --drain=30s", "- --drain=45s", "terminationGracePeriodSeconds"},
		{"grace not above drain and preStop", emb, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds"},
		{"no drain flag", ext, "            - --drain=30s\n", "", "--drain"},
		{"PDB selects nothing", "kubernetes/external-nats/pdb.yaml", "      app.kubernetes.io/component: hub\n", "      app.kubernetes.io/component: web\n", "PodDisruptionBudget"},
		{"PDB lets two go", "kubernetes/embedded/pdb.yaml", "minAvailable: 2", "minAvailable: 1", "PodDisruptionBudget"},
		{"rollout may drop a hub", ext, "maxUnavailable: 0", "maxUnavailable: 1", "maxUnavailable"},
		{"rollout strategy left to the default", ext, "      maxUnavailable: 0\n", "", "maxUnavailable"},
		{"embedded hubs may share a machine", emb, "requiredDuringSchedulingIgnoredDuringExecution:\n            - topologyKey: kubernetes.io/hostname",
			"requiredDuringSchedulingIgnoredDuringExecution:\n            - topologyKey: topology.kubernetes.io/zone", "anti-affinity"},
		{"embedded anti-affinity selects other pods", emb, "              labelSelector:\n                matchLabels:\n                  app.kubernetes.io/name: eventhub",
			"              labelSelector:\n                matchLabels:\n                  app.kubernetes.io/name: other", "anti-affinity"},
		{"embedded pods one by one", emb, "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "podManagementPolicy"},
		{"embedded updates by hand", emb, "type: RollingUpdate", "type: OnDelete", "updateStrategy"},
		{"runs as root", ext, "runAsUser: 65532", "runAsUser: 0", "runAsUser"},
		{"root allowed", emb, "      securityContext:\n        runAsNonRoot: true", "      securityContext:\n        runAsNonRoot: false", "runAsNonRoot"},
		{"writable root filesystem", ext, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", emb, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"capabilities kept", ext, `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities"},
		{"publish key inline", ext, "- --publish-key-file=/etc/eventhub/secrets/publish-key", "- --publish-key=hunter2", "--publish-key"},
		{"password in a URL", ext, "--nats=nats://nats-0.nats-headless:4222", "--nats=nats://eventhub:hunter2@nats-0.nats-headless:4222", "password"},
		{"secret env inline", emb, "- name: CLERK_SECRET_KEY\n              valueFrom:\n                secretKeyRef:\n                  name: eventhub\n                  key: clerk-secret-key",
			"- name: CLERK_SECRET_KEY\n              value: sk_live_hunter2", "CLERK_SECRET_KEY"},
		{"secret file not from a Secret", ext, "--nats-password-file=/etc/eventhub/secrets/nats-password", "--nats-password-file=/tmp/nats-password", "Secret"},
		{"a Secret with its values", "kubernetes/external-nats/pdb.yaml", "apiVersion: policy/v1", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: eventhub\nstringData:\n  publish-key: hunter2\n---\napiVersion: policy/v1", "Secret"},
		{"unknown flag", ext, "- --drain=30s", "- --drain=30s\n            - --drain-time=30s", "drain-time"},
		{"unknown variable", ext, "- name: GOMEMLIMIT", "- name: EVENTHUB_DRAIN_TIME\n              value: 30s\n            - name: GOMEMLIMIT", "EVENTHUB_DRAIN_TIME"},
		{"undefined $(VAR)", emb, "--nats-name=$(POD_NAME)", "--nats-name=$(NODE_NAME)", "NODE_NAME"},
		{"log not replicated, external", ext, "--nats-replicas=3", "--nats-replicas=1", "--nats-replicas"},
		{"log not replicated, embedded", emb, "--nats-replicas=3", "--nats-replicas=1", "--nats-replicas"},
		{"two NATS servers only", ext, ",nats://nats-2.nats-headless:4222", "", "--nats"},
		{"a route missing", emb, ",nats-route://eventhub-2.eventhub-nats:6222", "", "--nats-routes"},
		{"routes to the wrong Service", emb, "serviceName: eventhub-nats", "serviceName: eventhub", "serviceName"},
		{"peers hidden until ready", embS, "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "publishNotReadyAddresses"},
		{"store on an emptyDir", emb, "--nats-store=/var/lib/eventhub/nats", "--nats-store=/tmp/nats", "--nats-store"},
		{"server name not the pod's", emb, "--nats-name=$(POD_NAME)", "--nats-name=eventhub", "--nats-name"},
		{"two embedded hubs", emb, "replicas: 3", "replicas: 2", "replicas"},
		{"no public Service", "kubernetes/external-nats/service.yaml", "targetPort: http", "targetPort: admin", "public port"},
		{"read timeout below the heartbeat", "kubernetes/external-nats/ingress.yaml", `proxy-read-timeout: "90"`, `proxy-read-timeout: "20"`, "proxy-read-timeout"},
		{"read timeout of an hour", "kubernetes/embedded/ingress.yaml", `proxy-read-timeout: "90"`, `proxy-read-timeout: "3600"`, "proxy-read-timeout"},
		{"buffered stream", "kubernetes/embedded/ingress.yaml", `proxy-buffering: "off"`, `proxy-buffering: "on"`, "proxy-buffering"},
		{"no memory limit", emb, "              memory: 2Gi\n", "", "limits"},
		{"GOMEMLIMIT over the limit", ext, "value: 800MiB", "value: 1200MiB", "GOMEMLIMIT"},
		{"another image", emb, "image: " + hubImage, "image: eventhub:dev", "image"},
		{"NATS servers may share a machine", natsValuesFile, "requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution", "anti-affinity"},
		{"NATS cluster of one", natsValuesFile, "replicas: 3", "replicas: 1", "replicas"},
		{"NATS password inline", natsValuesFile, "password: << $EVENTHUB_NATS_PASSWORD >>", "password: hunter2", "password"},
		{"NATS without JetStream", natsValuesFile, "jetstream:\n    enabled: true", "jetstream:\n    enabled: false", "JetStream"},
		{"a Secret key the doc does not name", ext, "key: clerk-secret-key", "key: clerk-api-key", "clerk-api-key"},
		{"README without the link", readmeFile, "](docs/deployment.md)", "](docs/deploying.md)", "README"},
		{"secret files readable by all", emb, "defaultMode: 288", "defaultMode: 420", "defaultMode"},
		{"a flag flags.go does not define", flagsFile, `fs.StringVar(&c.listen, "listen",`, `fs.StringVar(&c.listen, "listen-addr",`, "--listen is no flag"},
		{"a document without its kind", "kubernetes/embedded/pdb.yaml", "kind: PodDisruptionBudget", "type: PodDisruptionBudget", "without apiVersion, kind"},
		{"not the serve command", ext, "            - serve\n", "", "want serve"},
		{"a stray argument", ext, "- --drain=30s", "- --drain=30s\n            - now", "no flag"},
		{"a flag twice", emb, "- --drain=30s", "- --drain=30s\n            - --drain=20s", "twice"},
		{"a command over the entrypoint", ext, "          args:\n", "          command: [/eventhub]\n          args:\n", "command"},
		{"listening on loopback", ext, "--listen=0.0.0.0:8080", "--listen=127.0.0.1:8080", "--listen"},
		{"admin port not the container's", emb, "--admin-listen=0.0.0.0:9090", "--admin-listen=0.0.0.0:9091", "admin"},
		{"startup probe on the public port", ext, "startupProbe:\n            httpGet:\n              path: /healthz\n              port: admin",
			"startupProbe:\n            httpGet:\n              path: /healthz\n              port: http", "startup probe"},
		{"selector not the pods'", ext, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: eventhub", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: other", "selector"},
		{"external PDB lets two go", "kubernetes/external-nats/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", "PodDisruptionBudget"},
		{"a rollout that cannot start", ext, "maxSurge: 1", "maxSurge: 0", "maxSurge"},
		{"privileged", ext, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: false\n            privileged: true", "privileged"},
		{"a capability added", emb, `drop: ["ALL"]`, `drop: ["ALL"]` + "\n              add: [NET_ADMIN]", "capabilities"},
		{"no CPU request", ext, "              cpu: 500m\n", "", "cpu"},
		{"no GOMEMLIMIT", emb, "            - name: GOMEMLIMIT\n              value: 1600MiB\n", "", "GOMEMLIMIT"},
		{"a secret variable from elsewhere", emb, "- name: CLERK_JWT_KEY\n              valueFrom:\n                secretKeyRef:\n                  name: eventhub\n                  key: clerk-jwt-key\n                  optional: true",
			"- name: CLERK_JWT_KEY\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name", "CLERK_JWT_KEY"},
		{"a kind the checks do not know", "kubernetes/embedded/pdb.yaml", "apiVersion: policy/v1", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: eventhub\n---\napiVersion: policy/v1", "ConfigMap"},
		{"admin port behind a Service", "kubernetes/embedded/service.yaml", "    - name: http\n      port: 80\n      targetPort: http\n",
			"    - name: http\n      port: 80\n      targetPort: http\n    - name: admin\n      port: 9090\n      targetPort: admin\n", "admin port"},
		{"no Ingress", "kubernetes/external-nats/ingress.yaml", "kind: Ingress", "kind: IngressRoute", "no Ingress"},
		{"Ingress to another Service", "kubernetes/external-nats/ingress.yaml", "name: eventhub\n                port:", "name: eventhub-admin\n                port:", "Ingress eventhub sends"},
		{"a NATS server of another release", ext, "nats://nats-1.nats-headless:4222", "nats://nats-1.queue-headless:4222", "release nats"},
		{"not a NATS URL", ext, "nats://nats-1.nats-headless:4222", "tls://nats-1.nats-headless:4222", "nats:// URL"},
		{"no NATS at all", ext, "            - --nats=nats://nats-0.nats-headless:4222,nats://nats-1.nats-headless:4222,nats://nats-2.nats-headless:4222\n", "", "neither --nats nor --nats-embed"},
		{"embedded NATS without credentials", emb, "            - --nats-user=eventhub\n            - --nats-password-file=/etc/eventhub/secrets/nats-password\n", "", "without --nats-user"},
		{"POD_NAME not the pod's", emb, "fieldPath: metadata.name", "fieldPath: spec.nodeName", "POD_NAME"},
		{"route port on loopback", emb, "--nats-cluster=0.0.0.0:6222", "--nats-cluster=127.0.0.1:6222", "--nats-cluster"},
		{"headless Service without the route port", embS, "    - name: nats-route\n      port: 6222\n", "    - name: nats-route\n      port: 6223\n", "route port"},
		{"headless Service selects nothing", embS, "  publishNotReadyAddresses: true\n  selector:\n    app.kubernetes.io/name: eventhub", "  publishNotReadyAddresses: true\n  selector:\n    app.kubernetes.io/name: other", "does not select the hubs"},
		{"NATS user not the hubs'", natsValuesFile, "user: eventhub", "user: hub", "--nats-user"},
		{"NATS password variable not from a Secret", natsValuesFile, "    EVENTHUB_NATS_PASSWORD:\n", "    OTHER_VARIABLE:\n", "not read from a Secret"},
	}
	checksCatch(t, readKubernetesFiles(t), cases, kubernetesProblems)
}

// breakCase breaks one rule: old, once in file, becomes new, and a problem
// must mention want.
type breakCase struct {
	name, file, old, new, want string
}

// checksCatch breaks each case's rule in a copy of original and fails
// unless problems, run on the copy, reports it.
func checksCatch(t *testing.T, original map[string][]byte, cases []breakCase, problems func(map[string][]byte) []string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := maps.Clone(original)
			text, ok := files[tc.file]
			if !ok {
				t.Fatalf("no file %s", tc.file)
			}
			if n := bytes.Count(text, []byte(tc.old)); n != 1 {
				t.Fatalf("%s: %q appears %d times, want once (update this case)", tc.file, tc.old, n)
			}
			files[tc.file] = bytes.Replace(text, []byte(tc.old), []byte(tc.new), 1)
			found := problems(files)
			for _, p := range found {
				if strings.Contains(p, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("with %q for %q in %s, no problem mentions %q; got:\n%s", tc.new, tc.old, tc.file, tc.want, strings.Join(found, "\n"))
		})
	}
}

// readKubernetesFiles reads every file the checks look at, by its path
// relative to this package.
func readKubernetesFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	paths := []string{natsValuesFile, deploymentDoc, readmeFile, flagsFile}
	for _, way := range []string{externalWay, embeddedWay} {
		m, err := filepath.Glob(filepath.Join(kubernetesDir, way, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no manifests in %s", filepath.Join(kubernetesDir, way))
		}
		paths = append(paths, m...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.ToSlash(p)] = b
	}
	return files
}

// kubernetesProblems checks the files (as readKubernetesFiles returns
// them) and says what is wrong, one line a problem.
func kubernetesProblems(files map[string][]byte) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	flags := knownFlags(string(files[flagsFile]))
	if len(flags.names) < 30+len(clusterFlags) {
		bad("%s: only %d flags found: is the pattern in knownFlags wrong?", flagsFile, len(flags.names)-len(clusterFlags))
	}
	// The Secret's keys, as docs/deployment.md creates them.
	secretKeys := map[string]bool{}
	for _, m := range regexp.MustCompile(`--from-(?:file|literal)=([A-Za-z0-9._-]+)=`).FindAllStringSubmatch(string(files[deploymentDoc]), -1) {
		secretKeys[m[1]] = true
	}
	if !strings.Contains(string(files[readmeFile]), "](docs/deployment.md)") {
		bad("%s does not link docs/deployment.md", readmeFile)
	}

	ways := map[string]*hubWay{}
	for _, name := range []string{externalWay, embeddedWay} {
		dir := kubernetesDir + "/" + name + "/"
		var paths []string
		for p := range files {
			if strings.HasPrefix(p, dir) {
				paths = append(paths, p)
			}
		}
		slices.Sort(paths)
		w := &hubWay{name: name}
		for _, p := range paths {
			objs, err := decodeManifests(p, files[p])
			if err != nil {
				bad("%v", err)
				continue
			}
			w.objects = append(w.objects, objs...)
		}
		ways[name] = w
		w.check(flags, secretKeys, bad)
	}
	checkNATSValues(files[natsValuesFile], ways[externalWay], bad)
	return problems
}

// ---- the manifests, as far as the checks read them ----

// object is one document of a manifest file: its kind and name, and the
// whole document to decode as its kind.
type object struct {
	file, kind, name string
	node             *yaml.Node
}

// decodeManifests reads every document of a multi-document YAML file.
func decodeManifests(path string, b []byte) ([]object, error) {
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if len(n.Content) == 0 || n.Content[0].Kind == 0 {
			continue // an empty document
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string
			Metadata   struct{ Name string }
		}
		if err := n.Decode(&head); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", path)
		}
		objs = append(objs, object{file: path, kind: head.Kind, name: head.Metadata.Name, node: &n})
	}
}

// intOrString is a field that Kubernetes takes as a number or a name
// (a port, maxUnavailable): kept as written.
type intOrString string

func (v *intOrString) UnmarshalYAML(n *yaml.Node) error {
	*v = intOrString(n.Value)
	return nil
}

type objectMeta struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// selects reports whether s selects pods with these labels: a selector
// with no labels selects nothing here, for safety.
func (s labelSelector) selects(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type workload struct {
	Metadata objectMeta
	Spec     struct {
		Replicas            *int
		ServiceName         string `yaml:"serviceName"`
		PodManagementPolicy string `yaml:"podManagementPolicy"`
		Selector            labelSelector
		Strategy            struct {
			Type          string
			RollingUpdate struct {
				MaxUnavailable *intOrString `yaml:"maxUnavailable"`
				MaxSurge       *intOrString `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		}
		UpdateStrategy struct {
			Type string
		} `yaml:"updateStrategy"`
		VolumeClaimTemplates []struct {
			Metadata objectMeta
		} `yaml:"volumeClaimTemplates"`
		Template struct {
			Metadata objectMeta
			Spec     podSpec
		}
	}
}

type podSpec struct {
	TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	Affinity                      struct {
		PodAntiAffinity struct {
			Required []struct {
				TopologyKey   string        `yaml:"topologyKey"`
				LabelSelector labelSelector `yaml:"labelSelector"`
			} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
		} `yaml:"podAntiAffinity"`
	}
	Containers []container
	Volumes    []struct {
		Name   string
		Secret *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode *int   `yaml:"defaultMode"`
			Items       []struct{ Key, Path string }
		}
	}
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool
	Capabilities             struct{ Add, Drop []string }
}

type container struct {
	Name, Image   string
	Command, Args []string
	Env           []envVar
	Ports         []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct{ Seconds int }
		} `yaml:"preStop"`
	}
	Resources       struct{ Requests, Limits map[string]string }
	SecurityContext securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string
	Value     *string
	ValueFrom *struct {
		SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
		FieldRef     *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string
		Port intOrString
	} `yaml:"httpGet"`
}

type service struct {
	Metadata objectMeta
	Spec     struct {
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string
		Ports                    []servicePort
	}
}

type servicePort struct {
	Name       string
	Port       int
	TargetPort intOrString `yaml:"targetPort"`
}

type disruptionBudget struct {
	Metadata objectMeta
	Spec     struct {
		MinAvailable   *intOrString `yaml:"minAvailable"`
		MaxUnavailable *intOrString `yaml:"maxUnavailable"`
		Selector       labelSelector
	}
}

type ingress struct {
	Metadata objectMeta
	Spec     struct {
		Rules []struct {
			HTTP struct {
				Paths []struct {
					Backend struct {
						Service struct {
							Name string
							Port struct{ Name string }
						}
					}
				}
			}
		}
	}
}

type secret struct {
	Data       map[string]string
	StringData map[string]string `yaml:"stringData"`
}

// ---- one way ----

// hubWay is one directory of manifests.
type hubWay struct {
	name    string
	objects []object

	// Set by check, for checkNATSValues: the hubs' flags.
	flags map[string]string
}

func (w *hubWay) check(known flagSet, secretKeys map[string]bool, bad func(string, ...any)) {
	say := func(format string, args ...any) { bad(w.name+": "+format, args...) }
	var (
		hubs      []workload
		hubKind   string
		services  []service
		pdbs      []disruptionBudget
		ingresses []ingress
	)
	for _, o := range w.objects {
		var err error
		switch o.kind {
		case "Deployment", "StatefulSet":
			var x workload
			err = o.node.Decode(&x)
			hubs, hubKind = append(hubs, x), o.kind
		case "Service":
			var x service
			err = o.node.Decode(&x)
			services = append(services, x)
		case "PodDisruptionBudget":
			var x disruptionBudget
			err = o.node.Decode(&x)
			pdbs = append(pdbs, x)
		case "Ingress":
			var x ingress
			err = o.node.Decode(&x)
			ingresses = append(ingresses, x)
		case "Secret":
			var x secret
			err = o.node.Decode(&x)
			if len(x.Data)+len(x.StringData) > 0 {
				say("%s: Secret %s holds values: secrets are created beside the manifests (docs/deployment.md), never kept in them", o.file, o.name)
			}
		default:
			say("%s: %s %s is a kind these checks do not know", o.file, o.kind, o.name)
		}
		if err != nil {
			say("%s: %s %s: %v", o.file, o.kind, o.name, err)
		}
	}
	if len(hubs) != 1 {
		say("%d Deployments or StatefulSets, want the hubs' one", len(hubs))
		return
	}
	hub := hubs[0]
	pod := hub.Spec.Template.Spec
	labels := hub.Spec.Template.Metadata.Labels
	if !hub.Spec.Selector.selects(labels) {
		say("the %s's selector does not select its own pods", hubKind)
	}
	if len(pod.Containers) != 1 {
		say("%d containers in the hub's pod, want 1", len(pod.Containers))
		return
	}
	c := pod.Containers[0]
	if c.Image != hubImage {
		say("image %q, want %q", c.Image, hubImage)
	}
	replicas := 1
	if hub.Spec.Replicas != nil {
		replicas = *hub.Spec.Replicas
	}
	if replicas < logReplicas {
		say("replicas %d: want at least %d hubs, so that losing one machine leaves two", replicas, logReplicas)
	}

	// Flags.
	if len(c.Command) > 0 {
		say("the container sets command %q: the image's ENTRYPOINT is the hub", c.Command)
	}
	flags, argProblems := parseServeArgs(c.Args, known)
	for _, p := range argProblems {
		say("args: %s", p)
	}
	w.flags = flags
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOf := func(v intOrString) int {
		if n, err := strconv.Atoi(string(v)); err == nil {
			return n
		}
		return ports[string(v)]
	}
	listenPort := func(flag string) int {
		addr, ok := flags[flag]
		if !ok {
			say("no --%s", flag)
			return -1
		}
		host, port, err := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		if err != nil || host != "0.0.0.0" || n == 0 {
			say("--%s %q: want 0.0.0.0:PORT, reachable from the Service and the kubelet", flag, addr)
		}
		return n
	}
	public, admin := listenPort("listen"), listenPort("admin-listen")
	if ports["http"] != public {
		say("container port http is %d, --listen's is %d", ports["http"], public)
	}
	if ports["admin"] != admin {
		say("container port admin is %d, --admin-listen's is %d", ports["admin"], admin)
	}

	// Probes: on the admin port, which the public Service does not expose.
	checkProbe := func(what string, p *probe, path string) {
		switch {
		case p == nil || p.HTTPGet == nil:
			say("no HTTP %s", what)
		case p.HTTPGet.Path != path || portOf(p.HTTPGet.Port) != admin:
			say("%s: GET %s on port %q, want %s on the admin port (%d)", what, p.HTTPGet.Path, p.HTTPGet.Port, path, admin)
		}
	}
	checkProbe("readiness probe", c.ReadinessProbe, "/readyz")
	checkProbe("liveness probe", c.LivenessProbe, "/healthz")
	if c.StartupProbe != nil {
		checkProbe("startup probe", c.StartupProbe, "/healthz")
	}

	// Drain within the grace period.
	drain, err := time.ParseDuration(flags["drain"])
	if _, ok := flags["drain"]; !ok || err != nil {
		say("--drain %q: set it explicitly, the grace period is measured against it", flags["drain"])
	}
	preStop := 0
	if ps := c.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		preStop = ps.Sleep.Seconds
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+time.Duration(preStop)*time.Second {
		say("terminationGracePeriodSeconds %v: want more than the preStop sleep (%ds) and --drain (%v), or the kubelet kills streams the drain was spreading out", derefInt(g), preStop, drain)
	}

	// One pod at a time, by every road.
	var budget bool
	for _, p := range pdbs {
		if !p.Spec.Selector.selects(labels) {
			continue
		}
		switch {
		case p.Spec.MaxUnavailable != nil && *p.Spec.MaxUnavailable == "1":
			budget = true
		case p.Spec.MinAvailable != nil && string(*p.Spec.MinAvailable) == strconv.Itoa(replicas-1):
			budget = true
		default:
			say("PodDisruptionBudget %s lets more than one hub go at a time (or none): want maxUnavailable 1 or minAvailable %d", p.Metadata.Name, replicas-1)
		}
	}
	if !budget {
		say("no PodDisruptionBudget selects the hub pods and lets one go at a time")
	}
	switch hubKind {
	case "Deployment":
		s := hub.Spec.Strategy
		if s.Type != "RollingUpdate" || s.RollingUpdate.MaxUnavailable == nil || *s.RollingUpdate.MaxUnavailable != "0" {
			say("Deployment strategy %q with maxUnavailable %v: want RollingUpdate with maxUnavailable 0, so a rollout never leaves fewer hubs than replicas", s.Type, derefStr(s.RollingUpdate.MaxUnavailable))
		}
		if m := s.RollingUpdate.MaxSurge; m != nil && (*m == "0" || *m == "0%") {
			say("Deployment maxSurge 0 with maxUnavailable 0: a rollout cannot start")
		}
	case "StatefulSet":
		if hub.Spec.PodManagementPolicy != "Parallel" {
			say("StatefulSet podManagementPolicy %q: want Parallel, the NATS servers form their cluster only together", hub.Spec.PodManagementPolicy)
		}
		if hub.Spec.UpdateStrategy.Type != "RollingUpdate" {
			say("StatefulSet updateStrategy %q: want RollingUpdate, one hub at a time", hub.Spec.UpdateStrategy.Type)
		}
	}
	if hubKind == "StatefulSet" || flags["nats-embed"] != "" {
		spread := false
		for _, term := range pod.Affinity.PodAntiAffinity.Required {
			if term.TopologyKey == "kubernetes.io/hostname" && term.LabelSelector.selects(labels) {
				spread = true
			}
		}
		if !spread {
			say("no required pod anti-affinity on kubernetes.io/hostname between the hubs: two copies of the log could share a machine")
		}
	}

	// Security.
	checkSecurity(pod.SecurityContext, c.SecurityContext, say)

	// Resources, and the Go heap under the memory limit.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			say("no %s in resources.requests", r)
		}
		if c.Resources.Limits[r] == "" {
			say("no %s in resources.limits", r)
		}
	}

	// Environment and secrets.
	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		secretish := secretName.MatchString(e.Name)
		switch {
		case e.Value != nil && secretish:
			say("env %s has a value in the manifest: a secret comes from a Secret (valueFrom.secretKeyRef)", e.Name)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if !secretKeys[e.ValueFrom.SecretKeyRef.Key] {
				say("env %s reads key %s of Secret %s, which the kubectl create secret of %s does not create", e.Name, e.ValueFrom.SecretKeyRef.Key, e.ValueFrom.SecretKeyRef.Name, deploymentDoc)
			}
		case secretish:
			say("env %s is a secret not read from a Secret", e.Name)
		}
		if strings.HasPrefix(e.Name, "EVENTHUB_") && !slices.Contains(envOnly, e.Name) && !known.names[flagOfEnv(e.Name)] {
			say("env %s sets no flag of the hub", e.Name)
		}
	}
	if lim, ok := env["GOMEMLIMIT"]; ok {
		heap, err1 := parseBytes(derefStr(lim.Value))
		mem, err2 := parseBytes(c.Resources.Limits["memory"])
		if err1 != nil || err2 != nil || heap >= mem {
			say("GOMEMLIMIT %s: want less than the memory limit %s, or the Go heap is killed before it collects", derefStr(lim.Value), c.Resources.Limits["memory"])
		}
	} else {
		say("no GOMEMLIMIT: set it below the memory limit")
	}
	for _, ref := range envRef.FindAllStringSubmatch(strings.Join(c.Args, " "), -1) {
		if _, ok := env[ref[1]]; !ok {
			say("args use $(%s), which the container's env does not define", ref[1])
		}
	}
	secretMounts := map[string]bool{} // mount paths of Secret volumes
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		volumes[v.Name] = true
		if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
			say("volume %s: defaultMode %s: want the Secret's files unreadable by others (0440: the hub's group, through fsGroup)", v.Name, derefInt(m))
		}
		for _, it := range v.Secret.Items {
			if !secretKeys[it.Key] {
				say("volume %s reads key %s of Secret %s, which the kubectl create secret of %s does not create", v.Name, it.Key, v.Secret.SecretName, deploymentDoc)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if volumes[m.Name] {
			secretMounts[m.MountPath] = true
		}
	}
	for name, value := range flags {
		if secretName.MatchString(name) && !strings.HasSuffix(name, "-file") {
			say("--%s on the command line: a secret goes in a file (--%s-file) or the environment, from a Secret", name, name)
		}
		if strings.HasSuffix(name, "-file") && secretName.MatchString(name) && !underAny(value, secretMounts) {
			say("--%s %s: not in a mounted Secret", name, value)
		}
		for _, u := range strings.Split(value, ",") {
			if pu, err := url.Parse(u); err == nil && pu.User != nil {
				say("--%s holds a user or password in a URL: give them with --nats-user and a password file", name)
			}
		}
	}

	// The public port: a Service in front of the hubs, an Ingress in front
	// of it.
	var publicService string
	for _, s := range services {
		if s.Spec.ClusterIP == "None" || !(labelSelector{MatchLabels: s.Spec.Selector}).selects(labels) {
			continue
		}
		for _, p := range s.Spec.Ports {
			switch portOf(p.TargetPort) {
			case public:
				publicService = s.Metadata.Name
			case admin:
				say("Service %s exposes the admin port: metrics and pprof are for Prometheus and operators only", s.Metadata.Name)
			}
		}
	}
	if publicService == "" {
		say("no Service selects the hubs on the public port (%d)", public)
	}
	heartbeat := 30 * time.Second
	if h, ok := flags["heartbeat"]; ok {
		heartbeat, _ = time.ParseDuration(h)
	}
	if len(ingresses) == 0 {
		say("no Ingress")
	}
	for _, in := range ingresses {
		for _, r := range in.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service.Name != publicService {
					say("Ingress %s sends to Service %q, want the public one %q", in.Metadata.Name, p.Backend.Service.Name, publicService)
				}
			}
		}
		a := in.Metadata.Annotations
		if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
			say("Ingress %s: proxy-buffering %q, want off: a buffered stream reaches the browser late", in.Metadata.Name, a["nginx.ingress.kubernetes.io/proxy-buffering"])
		}
		read, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/proxy-read-timeout"])
		timeout := time.Duration(read) * time.Second
		if err != nil || timeout <= heartbeat || timeout > 4*heartbeat {
			say("Ingress %s: proxy-read-timeout %q: want more than --heartbeat (%v), so a live stream is never cut, and at most 4 times it, so a stream whose hub's machine vanished is cut and resumes elsewhere",
				in.Metadata.Name, a["nginx.ingress.kubernetes.io/proxy-read-timeout"], heartbeat)
		}
	}

	// The log, replicated.
	if flags["nats"] == "" && flags["nats-embed"] == "" {
		say("neither --nats nor --nats-embed: each hub would have its own log")
		return
	}
	if flags["nats-replicas"] != strconv.Itoa(logReplicas) {
		say("--nats-replicas %q: want %d, so that the log survives the loss of one machine", flags["nats-replicas"], logReplicas)
	}
	switch w.name {
	case externalWay:
		urls := strings.Split(flags["nats"], ",")
		hosts := map[string]bool{}
		for i, u := range urls {
			pu, err := url.Parse(u)
			if err != nil || pu.Scheme != "nats" {
				say("--nats %q: not a nats:// URL", u)
				continue
			}
			if want := fmt.Sprintf("nats-%d.nats-headless", i); pu.Hostname() != want {
				say("--nats: server %d is %q, want %q (release nats of the NATS chart, its headless Service)", i, pu.Hostname(), want)
			}
			hosts[pu.Hostname()] = true
		}
		if len(hosts) != logReplicas {
			say("--nats names %d servers, want the %d of the NATS cluster, so a hub reconnects to another when one goes", len(hosts), logReplicas)
		}
	case embeddedWay:
		w.checkEmbedded(hub, c, flags, env, services, replicas, say)
	}
}

// checkEmbedded checks the flags that make the embedded hubs one NATS
// cluster.
func (w *hubWay) checkEmbedded(hub workload, c container, flags map[string]string, env map[string]envVar, services []service, replicas int, say func(string, ...any)) {
	if replicas != logReplicas {
		say("replicas %d: the embedded hubs are the NATS cluster, want %d", replicas, logReplicas)
	}
	if flags["nats-embed"] == "" {
		say("no --nats-embed")
	}
	if flags["nats-user"] == "" && flags["nats-token-file"] == "" {
		say("--nats-embed beyond loopback without --nats-user or --nats-token-file: the hub refuses it")
	}
	if flags["nats-name"] != "$(POD_NAME)" {
		say("--nats-name %q: want $(POD_NAME), stable and unique, the name the volume follows", flags["nats-name"])
	}
	if e, ok := env["POD_NAME"]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		say("env POD_NAME is not the pod's metadata.name")
	}
	_, routePort, err := net.SplitHostPort(flags["nats-cluster"])
	if err != nil || !strings.HasPrefix(flags["nats-cluster"], "0.0.0.0:") {
		say("--nats-cluster %q: want 0.0.0.0:PORT", flags["nats-cluster"])
	}
	var headless *service
	for i, s := range services {
		if s.Metadata.Name == hub.Spec.ServiceName {
			headless = &services[i]
		}
	}
	switch {
	case headless == nil:
		say("serviceName %q: no such Service", hub.Spec.ServiceName)
	case headless.Spec.ClusterIP != "None":
		say("serviceName %q is not headless (clusterIP None): the routes need each pod's own name", hub.Spec.ServiceName)
	case !headless.Spec.PublishNotReadyAddresses:
		say("Service %s: publishNotReadyAddresses false: the NATS servers must find each other before any hub is ready", headless.Metadata.Name)
	case !(labelSelector{MatchLabels: headless.Spec.Selector}).selects(hub.Spec.Template.Metadata.Labels):
		say("Service %s does not select the hubs", headless.Metadata.Name)
	}
	if headless != nil && !slices.ContainsFunc(headless.Spec.Ports, func(p servicePort) bool { return strconv.Itoa(p.Port) == routePort }) {
		say("Service %s has no port %s, the route port of --nats-cluster", headless.Metadata.Name, routePort)
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("nats-route://%s-%d.%s:%s", hub.Metadata.Name, i, hub.Spec.ServiceName, routePort))
	}
	if got := strings.Split(flags["nats-routes"], ","); !slices.Equal(got, want) {
		say("--nats-routes %q: want every hub through the headless Service, %q", flags["nats-routes"], strings.Join(want, ","))
	}
	// The store on the pod's own volume, kept across restarts.
	claims := map[string]bool{}
	for _, v := range hub.Spec.VolumeClaimTemplates {
		claims[v.Metadata.Name] = true
	}
	stored := false
	for _, m := range c.VolumeMounts {
		if claims[m.Name] && underAny(flags["nats-store"], map[string]bool{m.MountPath: true}) {
			stored = true
		}
	}
	if !stored {
		say("--nats-store %q is on no volume of the volumeClaimTemplates: the log's copy would not outlive the pod", flags["nats-store"])
	}
}

// checkSecurity: non-root, read-only, no privilege, no capability.
func checkSecurity(pod, c securityContext, say func(string, ...any)) {
	if !derefBool(pod.RunAsNonRoot) && !derefBool(c.RunAsNonRoot) {
		say("runAsNonRoot is not true")
	}
	if (pod.RunAsNonRoot != nil && !*pod.RunAsNonRoot) || (c.RunAsNonRoot != nil && !*c.RunAsNonRoot) {
		say("runAsNonRoot false somewhere")
	}
	for _, u := range []*int64{pod.RunAsUser, c.RunAsUser} {
		if u != nil && *u == 0 {
			say("runAsUser 0")
		}
	}
	if !derefBool(c.ReadOnlyRootFilesystem) {
		say("the container's readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		say("the container's allowPrivilegeEscalation is not false")
	}
	if derefBool(c.Privileged) {
		say("the container is privileged")
	}
	if !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		say("capabilities drop %v, add %v: want drop ALL, add none", c.Capabilities.Drop, c.Capabilities.Add)
	}
}

// checkNATSValues checks the values for the NATS chart against the hubs
// that use it.
func checkNATSValues(b []byte, hubs *hubWay, bad func(string, ...any)) {
	say := func(format string, args ...any) { bad(natsValuesFile+": "+format, args...) }
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
			}
			Jetstream struct {
				Enabled   bool
				FileStore struct {
					Enabled *bool
				} `yaml:"fileStore"`
			}
			Merge struct {
				Authorization struct{ User, Password string }
			}
		}
		Container struct {
			Env map[string]envVar
		}
		PodTemplate struct {
			Merge struct {
				Spec podSpec
			}
		} `yaml:"podTemplate"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		say("%v", err)
		return
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != logReplicas {
		say("cluster enabled %v with %d replicas: want %d NATS servers, one for each copy of the log", v.Config.Cluster.Enabled, v.Config.Cluster.Replicas, logReplicas)
	}
	if !v.Config.Jetstream.Enabled || (v.Config.Jetstream.FileStore.Enabled != nil && !*v.Config.Jetstream.FileStore.Enabled) {
		say("JetStream not enabled with a file store: the log needs it")
	}
	natsLabels := map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats", "app.kubernetes.io/component": "nats"}
	spread := false
	for _, term := range v.PodTemplate.Merge.Spec.Affinity.PodAntiAffinity.Required {
		if term.TopologyKey == "kubernetes.io/hostname" && term.LabelSelector.selects(natsLabels) {
			spread = true
		}
	}
	if !spread {
		say("no required pod anti-affinity on kubernetes.io/hostname between the NATS servers (podTemplate.merge): two copies of the log could share a machine")
	}
	auth := v.Config.Merge.Authorization
	m := regexp.MustCompile(`^<< \$([A-Z_]+) >>$`).FindStringSubmatch(auth.Password)
	if m == nil {
		say("config.merge.authorization.password %q: want << $VARIABLE >>, the server's environment from a Secret, never the password itself", auth.Password)
	} else if e, ok := v.Container.Env[m[1]]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		say("the password's variable %s is not read from a Secret in container.env", m[1])
	}
	if hubs != nil && auth.User != hubs.flags["nats-user"] {
		say("authorization.user %q, the hubs' --nats-user is %q", auth.User, hubs.flags["nats-user"])
	}
}

// ---- flags ----

// flagSet is what `eventhub serve` accepts: the names in flags.go, and the
// cluster flags.
type flagSet struct {
	names map[string]bool
	bools map[string]bool // take no value
}

// knownFlags reads the flag names off flags.go's fs.XxxVar(&c.field, "name", …)
// calls, and adds clusterFlags.
func knownFlags(src string) flagSet {
	fs := flagSet{names: map[string]bool{}, bools: map[string]bool{}}
	for _, m := range regexp.MustCompile(`fs\.(\w+)\(&c\.\w+,\s*"([a-z0-9-]+)"`).FindAllStringSubmatch(src, -1) {
		fs.names[m[2]] = true
		if m[1] == "BoolVar" {
			fs.bools[m[2]] = true
		}
	}
	for _, f := range clusterFlags {
		fs.names[f] = true
	}
	return fs
}

// parseServeArgs reads `serve --flag=value --flag value …` into flags by
// name, and says what is wrong: another command, a flag the hub does not
// have, one given twice.
func parseServeArgs(args []string, fs flagSet) (map[string]string, []string) {
	var problems []string
	flags := map[string]string{}
	if len(args) == 0 || args[0] != "serve" {
		return flags, []string{fmt.Sprintf("%q: want serve and its flags", args)}
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			problems = append(problems, fmt.Sprintf("%q is no flag", a))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case hasValue:
		case fs.bools[name]:
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			problems = append(problems, fmt.Sprintf("--%s has no value", name))
		}
		if !fs.names[name] {
			problems = append(problems, fmt.Sprintf("--%s is no flag of eventhub serve (%s)", name, flagsFile))
		}
		if _, twice := flags[name]; twice {
			problems = append(problems, fmt.Sprintf("--%s given twice", name))
		}
		flags[name] = value
	}
	return flags, problems
}

// flagOfEnv is the flag an EVENTHUB_ variable sets (envName's inverse).
func flagOfEnv(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "EVENTHUB_")), "_", "-")
}

// ---- small helpers ----

// secretName matches a flag or variable that holds a secret (or a file of
// one).
var secretName = regexp.MustCompile(`(?i)(key|password|token|secret|credential)`)

// envRef is Kubernetes' $(VAR) in args.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// underAny reports whether path is one of dirs or below one.
func underAny(path string, dirs map[string]bool) bool {
	for d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// parseBytes reads a Kubernetes quantity or a Go memory limit: 1Gi,
// 1600MiB, 512M, 1048576.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		size   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			return n * u.size, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func derefBool(b *bool) bool { return b != nil && *b }

func derefInt(i *int) string {
	if i == nil {
		return "unset"
	}
	return strconv.Itoa(*i)
}

func derefStr[S ~string](s *S) string {
	if s == nil {
		return "unset"
	}
	return string(*s)
}
