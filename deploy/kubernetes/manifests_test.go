package kubernetes

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"signsvr.dev/signsvr/internal/config"
)

// kustomization is the part of kustomize's Kustomization this base uses, decoded
// strictly: a field this test does not know is an error, so nothing in the file
// escapes the checks below.
type kustomization struct {
	APIVersion         string      `json:"apiVersion"`
	Kind               string      `json:"kind"`
	Namespace          string      `json:"namespace"`
	Resources          []string    `json:"resources"`
	ConfigMapGenerator []generator `json:"configMapGenerator"`
	SecretGenerator    []generator `json:"secretGenerator"`
	Images             []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

type generator struct {
	Name  string   `json:"name"`
	Files []string `json:"files"`
}

// base is every object of the kustomize base, decoded into the official types.
type base struct {
	k       kustomization
	ns      *corev1.Namespace
	sa      *corev1.ServiceAccount
	sts     *appsv1.StatefulSet
	svcs    []*corev1.Service
	pdb     *policyv1.PodDisruptionBudget
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	netpol  *networkingv1.NetworkPolicy
	cfg     *config.Config
	cfgFile string
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

func loadBase(t *testing.T) *base {
	t.Helper()
	var b base
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &b.k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if b.k.APIVersion != "kustomize.config.k8s.io/v1beta1" || b.k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml is %s %s", b.k.APIVersion, b.k.Kind)
	}
	for _, res := range b.k.Resources {
		data, err := os.ReadFile(res)
		if err != nil {
			t.Fatalf("resource %s: %v", res, err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s (document %d)", res, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			want := ""
			switch tm.Kind {
			case "Namespace":
				b.ns, want = &corev1.Namespace{}, "v1"
				obj = b.ns
			case "ServiceAccount":
				b.sa, want = &corev1.ServiceAccount{}, "v1"
				obj = b.sa
			case "StatefulSet":
				b.sts, want = &appsv1.StatefulSet{}, "apps/v1"
				obj = b.sts
			case "Service":
				s := &corev1.Service{}
				b.svcs, want = append(b.svcs, s), "v1"
				obj = s
			case "PodDisruptionBudget":
				b.pdb, want = &policyv1.PodDisruptionBudget{}, "policy/v1"
				obj = b.pdb
			case "HorizontalPodAutoscaler":
				b.hpa, want = &autoscalingv2.HorizontalPodAutoscaler{}, "autoscaling/v2"
				obj = b.hpa
			case "NetworkPolicy":
				b.netpol, want = &networkingv1.NetworkPolicy{}, "networking.k8s.io/v1"
				obj = b.netpol
			default:
				t.Fatalf("%s: kind %q is not one this test checks", where, tm.Kind)
			}
			if tm.APIVersion != want {
				t.Errorf("%s: %s is apiVersion %q, want %q", where, tm.Kind, tm.APIVersion, want)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
	}
	for name, missing := range map[string]bool{
		"Namespace": b.ns == nil, "ServiceAccount": b.sa == nil, "StatefulSet": b.sts == nil,
		"PodDisruptionBudget": b.pdb == nil, "HorizontalPodAutoscaler": b.hpa == nil, "NetworkPolicy": b.netpol == nil,
	} {
		if missing {
			t.Fatalf("the base has no %s", name)
		}
	}
	b.cfgFile = b.generatorFiles(t, "signsvr-config", false)[0]
	cb, err := os.ReadFile(b.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	// The configuration as the server reads it in the pod: with POD_NAME set by
	// the downward API.
	t.Setenv("POD_NAME", "signsvr-0")
	if b.cfg, err = config.Parse(cb, "/etc/signsvr"); err != nil {
		t.Fatalf("%s (the signsvr-config ConfigMap): %v", b.cfgFile, err)
	}
	return &b
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// generatorFiles are the files of the named ConfigMap or Secret generator.
func (b *base) generatorFiles(t *testing.T, name string, secret bool) []string {
	t.Helper()
	gens := b.k.ConfigMapGenerator
	if secret {
		gens = b.k.SecretGenerator
	}
	for _, g := range gens {
		if g.Name == name {
			return g.Files
		}
	}
	t.Fatalf("kustomization.yaml generates no %s (secret: %v)", name, secret)
	return nil
}

func (b *base) service(t *testing.T, headless bool) *corev1.Service {
	t.Helper()
	for _, s := range b.svcs {
		if (s.Spec.ClusterIP == corev1.ClusterIPNone) == headless {
			return s
		}
	}
	t.Fatalf("no Service with headless=%v", headless)
	return nil
}

func (b *base) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := b.sts.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "signsvr" {
		t.Fatalf("the pod has containers %v, want one named signsvr", cs)
	}
	return &cs[0]
}

func hostPort(t *testing.T, hp string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatalf("%q: %v", hp, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", hp, err)
	}
	return int32(n)
}

func TestResourcesAreTheDirectory(t *testing.T) {
	b := loadBase(t)
	// Every manifest in the directory is listed (a forgotten file is never applied),
	// and the generators' sources are the only other YAML files.
	yamls, _ := filepath.Glob("*.yaml")
	var want []string
	for _, f := range yamls {
		if f != "kustomization.yaml" && f != b.cfgFile {
			want = append(want, f)
		}
	}
	got := slices.Clone(b.k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("resources %v, want every manifest of the directory %v", got, want)
	}
	if b.k.Namespace != b.ns.Name {
		t.Errorf("kustomization namespace %q, Namespace object %q", b.k.Namespace, b.ns.Name)
	}
}

func TestSelectorsMatchThePods(t *testing.T) {
	b := loadBase(t)
	pod := labels.Set(b.sts.Spec.Template.Labels)
	sel := func(what string, ls *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if s.Empty() || !s.Matches(pod) {
			t.Errorf("%s selects %v; the pods are labelled %v", what, s, pod)
		}
	}
	sel("StatefulSet selector", b.sts.Spec.Selector)
	sel("PodDisruptionBudget", b.pdb.Spec.Selector)
	sel("NetworkPolicy podSelector", &b.netpol.Spec.PodSelector)
	for i, tsc := range b.sts.Spec.Template.Spec.TopologySpreadConstraints {
		sel(fmt.Sprintf("topologySpreadConstraints[%d]", i), tsc.LabelSelector)
	}
	if len(b.sts.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		t.Errorf("no topologySpreadConstraints")
	}
	for _, s := range b.svcs {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) {
			t.Errorf("Service %s selects %v; the pods are labelled %v", s.Name, s.Spec.Selector, pod)
		}
	}
	// The StatefulSet's governing Service is the headless one.
	if h := b.service(t, true); b.sts.Spec.ServiceName != h.Name {
		t.Errorf("serviceName %q, the headless Service is %q", b.sts.Spec.ServiceName, h.Name)
	}
	b.service(t, false) // and a ClusterIP Service exists
	ref := b.hpa.Spec.ScaleTargetRef
	if ref.Kind != "StatefulSet" || ref.APIVersion != "apps/v1" || ref.Name != b.sts.Name {
		t.Errorf("the HorizontalPodAutoscaler scales %+v, not the StatefulSet %s", ref, b.sts.Name)
	}
	if min := b.hpa.Spec.MinReplicas; min == nil || *min < 2 || b.hpa.Spec.MaxReplicas < *min {
		t.Errorf("HPA replicas %v..%d: want at least two always", min, b.hpa.Spec.MaxReplicas)
	}
	hasCPU := false
	for _, m := range b.hpa.Spec.Metrics {
		hasCPU = hasCPU || (m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
	}
	if !hasCPU || b.container(t).Resources.Requests.Cpu().IsZero() {
		t.Errorf("the HPA must scale on CPU, which needs a CPU request")
	}
	if sa := b.sts.Spec.Template.Spec.ServiceAccountName; sa != b.sa.Name {
		t.Errorf("serviceAccountName %q, the ServiceAccount is %q", sa, b.sa.Name)
	}
}

func TestPortsAndProbesAgree(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if b.cfg.Ops.Listen == "" {
		t.Fatalf("%s has no ops.listen: probes and metrics need the operations listener", b.cfgFile)
	}
	// The container ports are the ports the configuration listens on.
	for name, hp := range map[string]string{"grpc": b.cfg.Listen, "ops": b.cfg.Ops.Listen} {
		if p, ok := ports[name]; !ok || p != hostPort(t, hp) {
			t.Errorf("container port %q is %d, the configuration listens on %s", name, p, hp)
		}
	}
	// Services target container ports by name, at the same number.
	for _, s := range b.svcs {
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				t.Errorf("Service %s port %s targets %s: target container ports by name", s.Name, sp.Name, sp.TargetPort.String())
				continue
			}
			if p, ok := ports[sp.TargetPort.StrVal]; !ok || p != sp.Port || sp.Name != sp.TargetPort.StrVal {
				t.Errorf("Service %s port %s (%d) targets %q, which the container does not declare at %d",
					s.Name, sp.Name, sp.Port, sp.TargetPort.StrVal, sp.Port)
			}
		}
	}
	if h := b.service(t, true); len(h.Spec.Ports) == 0 || h.Spec.Ports[0].Name != "grpc" {
		t.Errorf("the headless Service does not serve the API port first")
	}
	for i, r := range b.netpol.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.Type != intstr.String || ports[p.Port.StrVal] == 0 {
				t.Errorf("NetworkPolicy ingress[%d] names port %v, not a container port by name", i, p.Port)
			}
		}
	}
	// Probes reach the plaintext operations port (gRPC probes send no client
	// certificate), never the mutual-TLS API port.
	probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe}
	for name, p := range probes {
		if p == nil {
			t.Errorf("no %s", name)
			continue
		}
		switch {
		case p.GRPC != nil:
			if p.GRPC.Port != ports["ops"] {
				t.Errorf("%s: gRPC probe on port %d, the ops port is %d", name, p.GRPC.Port, ports["ops"])
			}
		case p.HTTPGet != nil:
			if p.HTTPGet.Port.StrVal != "ops" || !slices.Contains([]string{"/healthz", "/readyz"}, p.HTTPGet.Path) {
				t.Errorf("%s: GET %s on %s, want /healthz or /readyz on the ops port by name", name, p.HTTPGet.Path, p.HTTPGet.Port.String())
			}
		default:
			t.Errorf("%s is neither a gRPC probe nor an HTTP GET", name)
		}
	}
	if p := c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness must not follow readiness (a token that is down would restart every replica)")
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness is /readyz or grpc.health.v1, not %s", p.HTTPGet.Path)
	}
	// The startup probe gives an HSM login minutes, not the default 30s.
	if p := c.StartupProbe; p != nil {
		if window := time.Duration(p.PeriodSeconds*p.FailureThreshold) * time.Second; window < 2*time.Minute {
			t.Errorf("startupProbe allows %v to start: too short for an HSM login", window)
		}
	}
}

func TestGracePeriodCoversTheDrain(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	grace := b.sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatalf("no terminationGracePeriodSeconds (the default 30s is not above a 30s drain)")
	}
	pause := time.Duration(0)
	if l := c.Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			t.Fatalf("preStop is not a sleep (the image has no shell to run a command)")
		}
		pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	need := pause + b.cfg.ShutdownTimeout
	if g := time.Duration(*grace) * time.Second; g <= need {
		t.Errorf("terminationGracePeriodSeconds %v is not above the preStop pause and shutdown_timeout (%v)", g, need)
	}
	if !slices.Equal(c.Args[:3], []string{"serve", "--config", "/etc/signsvr/signsvr.yaml"}) {
		t.Errorf("args %v: want serve --config /etc/signsvr/signsvr.yaml", c.Args)
	}
}

func TestHardenedPod(t *testing.T) {
	b := loadBase(t)
	spec := b.sts.Spec.Template.Spec
	c := b.container(t)
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatalf("security contexts missing")
	}
	is := func(p *bool) bool { return p != nil && *p }
	isNot := func(p *bool) bool { return p != nil && !*p }
	for what, ok := range map[string]bool{
		"runAsNonRoot":                     is(psc.RunAsNonRoot) && is(sc.RunAsNonRoot),
		"runAsUser 65532 (the image USER)": psc.RunAsUser != nil && *psc.RunAsUser == 65532 && sc.RunAsUser != nil && *sc.RunAsUser == 65532,
		"fsGroup 65532":                    psc.FSGroup != nil && *psc.FSGroup == 65532,
		"readOnlyRootFilesystem":           is(sc.ReadOnlyRootFilesystem),
		"allowPrivilegeEscalation false":   isNot(sc.AllowPrivilegeEscalation),
		"privileged false":                 sc.Privileged == nil || !*sc.Privileged,
		"capabilities drop ALL":            sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
		"seccomp RuntimeDefault":           psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"no service account token":         isNot(spec.AutomountServiceAccountToken) && isNot(b.sa.AutomountServiceAccountToken),
		"memory request and limit":         !c.Resources.Requests.Memory().IsZero() && !c.Resources.Limits.Memory().IsZero(),
		"restricted Pod Security":          b.ns.Labels["pod-security.kubernetes.io/enforce"] == "restricted",
	} {
		if !ok {
			t.Errorf("pod security: %s", what)
		}
	}
}

// TestConfigFilesAreMounted follows every file the configuration names to the
// volume mounted at its directory and the generator that fills that volume, so
// that a renamed file or a forgotten mount fails here, not in a crash-looping pod.
func TestConfigFilesAreMounted(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	spec := b.sts.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	claims := map[string]bool{}
	for _, pvc := range b.sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
	}
	mountAt := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !claims[m.Name] {
			t.Errorf("volumeMount %s names no volume", m.Name)
		}
		mountAt[m.MountPath] = m
	}
	// filled says which generator fills volume v and whether it is a Secret.
	filled := func(v corev1.Volume) (string, bool) {
		switch {
		case v.ConfigMap != nil:
			return v.ConfigMap.Name, false
		case v.Secret != nil:
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
				t.Errorf("Secret volume %s: defaultMode must be 0440 (root:fsGroup, readable by the server, refused by nobody)", v.Name)
			}
			return v.Secret.SecretName, true
		}
		return "", false
	}
	check := func(setting, file string) {
		t.Helper()
		m, ok := mountAt[path.Dir(file)]
		if !ok {
			t.Errorf("%s: %s is in no mounted directory", setting, file)
			return
		}
		if !m.ReadOnly {
			t.Errorf("%s: the mount at %s is writable", setting, m.MountPath)
		}
		name, secret := filled(volumes[m.Name])
		if name == "" {
			t.Errorf("%s: %s is mounted from volume %s, which no generator fills", setting, file, m.Name)
			return
		}
		var keys []string
		for _, f := range b.generatorFiles(t, name, secret) {
			keys = append(keys, path.Base(f))
		}
		if !slices.Contains(keys, path.Base(file)) {
			t.Errorf("%s: %s is not among the files of %s (%v)", setting, file, name, keys)
		}
		if isSecret := slices.ContainsFunc(b.cfg.SecretFiles(), func(s config.SecretFile) bool { return s.Path == file }); isSecret && !secret {
			t.Errorf("%s: %s holds a secret but comes from a ConfigMap", setting, file)
		}
	}
	cfg := b.cfg
	check("tls.cert_file", cfg.TLS.CertFile)
	check("tls.key_file", cfg.TLS.KeyFile)
	for _, f := range cfg.TLS.ClientCAFiles {
		check("tls.client_ca_files", f)
	}
	for _, f := range cfg.Trust.Anchors {
		check("trust.anchors", f)
	}
	for _, k := range cfg.Keystore.Soft.Keys {
		check("keystore.soft.keys "+k.Name, k.KeyFile)
		check("keystore.soft.keys "+k.Name, k.CertFile)
	}
	if cfg.Login != nil {
		for _, f := range cfg.Login.ChallengeKeyFiles {
			check("login.challenge_key_files", f)
		}
	}
	// The configuration itself.
	if m, ok := mountAt["/etc/signsvr/signsvr.yaml"]; !ok || m.SubPath != path.Base(b.cfgFile) || !m.ReadOnly {
		t.Errorf("the configuration is not mounted read-only at /etc/signsvr/signsvr.yaml from %s", b.cfgFile)
	} else if name, secret := filled(volumes[m.Name]); name != "signsvr-config" || secret {
		t.Errorf("the configuration comes from %s, not the signsvr-config ConfigMap", name)
	}
	// Each replica's audit log on its own claim, named by its pod name.
	if cfg.Audit == nil {
		t.Fatalf("%s keeps no audit log", b.cfgFile)
	}
	if m, ok := mountAt[cfg.Audit.Dir]; !ok || !claims[m.Name] || m.ReadOnly {
		t.Errorf("audit.dir %s is not a writable volumeClaimTemplate of the StatefulSet", cfg.Audit.Dir)
	}
	if cfg.Audit.ReplicaID != "${POD_NAME}" || cfg.Audit.ResolvedReplicaID() != "signsvr-0" {
		t.Errorf("audit.replica_id %q: want ${POD_NAME}, the pod name", cfg.Audit.ReplicaID)
	}
	podName := false
	for _, e := range c.Env {
		podName = podName || (e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !podName {
		t.Errorf("POD_NAME is not the pod's metadata.name (downward API)")
	}
	if r := b.sts.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		r.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("audit volumes must be retained when the StatefulSet scales in or is deleted (until shipped)")
	}
	// Nothing else is writable: every writable mount is the audit claim or an emptyDir.
	for _, m := range c.VolumeMounts {
		if v, ok := volumes[m.Name]; ok && !m.ReadOnly && v.EmptyDir == nil {
			t.Errorf("volume %s is writable", m.Name)
		}
	}
}

// TestKustomizeBuild builds the base with kustomize (kubectl kustomize) when kubectl
// is installed, with placeholder files for the generators, and decodes every object
// of the output strictly: the kustomization itself (generators, namespace, image)
// is then checked as kustomize reads it, and the generated ConfigMaps and Secrets
// are the ones the StatefulSet mounts, by their hashed names.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the kustomize build is not checked (the other tests read the same files)")
	}
	b := loadBase(t)
	dir := t.TempDir()
	files := []string{"kustomization.yaml", b.cfgFile}
	files = append(files, b.k.Resources...)
	for _, g := range append(slices.Clone(b.k.ConfigMapGenerator), b.k.SecretGenerator...) {
		files = append(files, g.Files...)
	}
	for _, f := range files {
		data := []byte("placeholder\n")
		if src, err := os.ReadFile(f); err == nil {
			data = src
		} else if !strings.HasPrefix(f, "files/") {
			t.Fatal(err)
		}
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr)
	}
	generated := map[string]bool{}
	var sts *appsv1.StatefulSet
	for _, doc := range docSep.Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		var obj interface{ GetNamespace() string }
		switch tm.Kind {
		case "ConfigMap", "Secret":
			var o metav1.PartialObjectMetadata
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatal(err)
			}
			typed := map[string]any{"ConfigMap": &corev1.ConfigMap{}, "Secret": &corev1.Secret{}}[tm.Kind]
			if err := yaml.UnmarshalStrict([]byte(doc), typed); err != nil {
				t.Fatalf("generated %s %s: %v", tm.Kind, o.Name, err)
			}
			generated[o.Name] = true
			obj = &o
		case "StatefulSet":
			sts = &appsv1.StatefulSet{}
			if err := yaml.UnmarshalStrict([]byte(doc), sts); err != nil {
				t.Fatal(err)
			}
			obj = sts
		default:
			var o metav1.PartialObjectMetadata
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatal(err)
			}
			obj = &o
		}
		if tm.Kind != "Namespace" && obj.GetNamespace() != b.k.Namespace {
			t.Errorf("%s is in namespace %q, want %q", tm.Kind, obj.GetNamespace(), b.k.Namespace)
		}
	}
	if sts == nil {
		t.Fatalf("the build has no StatefulSet")
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		name := ""
		switch {
		case v.ConfigMap != nil:
			name = v.ConfigMap.Name
		case v.Secret != nil:
			name = v.Secret.SecretName
		default:
			continue
		}
		if !generated[name] {
			t.Errorf("volume %s mounts %s, which the build does not generate", v.Name, name)
		}
	}
	if img := sts.Spec.Template.Spec.Containers[0].Image; len(b.k.Images) == 0 || img != b.k.Images[0].NewName+":"+b.k.Images[0].NewTag {
		t.Errorf("the built image is %q, not the kustomization's images entry", img)
	}
}
