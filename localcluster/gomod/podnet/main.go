// podnet is the pod network of the kube-alive kind node image: the small route-per-node agent that
// kind's kindnetd is, built from this module alone (kindnetd is a nested module the Go module
// proxy does not serve). It runs as a DaemonSet on every node (host network) and, from a watch on
// the Node objects:
//   - writes this node's CNI config: Debian's bridge + host-local plugins on the node's podCIDR;
//   - routes every other node's podCIDR via that node's InternalIP (all nodes share one L2
//     network, so a route per node is all that cross-node pod traffic needs);
//   - removes the route of a node that is deleted.
//
// Only the standard library: the API is read over HTTPS with the pod's service account, and
// routes are set with iproute2's `ip`, so the image is a Debian base plus this one binary.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type node struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR string `json:"podCIDR"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

func (n node) internalIP() string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" && net.ParseIP(a.Address).To4() != nil {
			return a.Address
		}
	}
	return ""
}

type nodeList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []node `json:"items"`
}

type event struct {
	Type   string `json:"type"`
	Object node   `json:"object"`
}

type agent struct {
	self     string
	base     string
	token    string
	client   *http.Client
	watch    *http.Client
	cniConf  string
	nodes    map[string]node
	routes   map[string]string // podCIDR -> gateway, as installed by this agent
	lastConf []byte
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	self := os.Getenv("NODE_NAME")
	if self == "" {
		log.Fatal("podnet: NODE_NAME is not set (the DaemonSet passes spec.nodeName)")
	}
	// kind patches CONTROL_PLANE_ENDPOINT in (host:port), so the agent does not wait for
	// kube-proxy to program the kubernetes Service before the node has a pod network.
	endpoint := os.Getenv("CONTROL_PLANE_ENDPOINT")
	if endpoint == "" {
		endpoint = net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	}
	token, err := os.ReadFile(filepath.Join(saDir, "token"))
	if err != nil {
		log.Fatalf("podnet: no service account token: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		log.Fatalf("podnet: no service account CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatal("podnet: the service account CA holds no certificate")
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	cniConf := os.Getenv("CNI_CONF")
	if cniConf == "" {
		cniConf = "/etc/cni/net.d/10-kube-alive-podnet.conflist"
	}
	a := &agent{
		self:    self,
		base:    "https://" + endpoint,
		token:   strings.TrimSpace(string(token)),
		client:  &http.Client{Transport: transport, Timeout: 30 * time.Second},
		watch:   &http.Client{Transport: transport},
		cniConf: cniConf,
		nodes:   map[string]node{},
		routes:  map[string]string{},
	}
	log.Printf("podnet: node %s, API %s, CNI config %s", self, a.base, cniConf)
	backoff := time.Second
	for {
		err := a.listAndWatch()
		log.Printf("podnet: %v; listing again in %s", err, backoff)
		time.Sleep(backoff)
		if backoff < 16*time.Second {
			backoff *= 2
		}
	}
}

func (a *agent) get(c *http.Client, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %s", path, resp.Status, strings.TrimSpace(body))
	}
	return resp, nil
}

func (a *agent) listAndWatch() error {
	resp, err := a.get(a.client, "/api/v1/nodes")
	if err != nil {
		return err
	}
	var list nodeList
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("decoding the node list: %w", err)
	}
	a.nodes = map[string]node{}
	for _, n := range list.Items {
		a.nodes[n.Metadata.Name] = n
	}
	a.reconcile()
	rv := list.Metadata.ResourceVersion
	for {
		path := "/api/v1/nodes?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + rv
		resp, err := a.get(a.watch, path)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(resp.Body)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				resp.Body.Close()
				if errors.Is(err, io.EOF) {
					break // the server ended the watch (timeoutSeconds): watch on from rv
				}
				return fmt.Errorf("watch: %w", err)
			}
			switch ev.Type {
			case "ADDED", "MODIFIED":
				a.nodes[ev.Object.Metadata.Name] = ev.Object
			case "DELETED":
				delete(a.nodes, ev.Object.Metadata.Name)
			case "BOOKMARK":
			case "ERROR":
				resp.Body.Close()
				return errors.New("watch: the API server sent an ERROR event (resourceVersion too old?)")
			}
			if ev.Object.Metadata.ResourceVersion != "" {
				rv = ev.Object.Metadata.ResourceVersion
			}
			if ev.Type != "BOOKMARK" {
				a.reconcile()
			}
		}
	}
}

func (a *agent) reconcile() {
	if me, ok := a.nodes[a.self]; ok && me.Spec.PodCIDR != "" {
		if err := a.writeConf(me.Spec.PodCIDR); err != nil {
			log.Printf("podnet: writing %s: %v", a.cniConf, err)
		}
	}
	want := map[string]string{}
	for name, n := range a.nodes {
		if name == a.self || n.Spec.PodCIDR == "" || n.internalIP() == "" {
			continue
		}
		want[n.Spec.PodCIDR] = n.internalIP()
	}
	cidrs := make([]string, 0, len(want))
	for cidr := range want {
		cidrs = append(cidrs, cidr)
	}
	sort.Strings(cidrs)
	for _, cidr := range cidrs {
		gw := want[cidr]
		if a.routes[cidr] == gw {
			continue
		}
		if err := ip("route", "replace", cidr, "via", gw); err != nil {
			log.Printf("podnet: route %s via %s: %v", cidr, gw, err)
			continue
		}
		log.Printf("podnet: route %s via %s", cidr, gw)
		a.routes[cidr] = gw
	}
	for cidr, gw := range a.routes {
		if _, ok := want[cidr]; ok {
			continue
		}
		if err := ip("route", "del", cidr, "via", gw); err != nil {
			log.Printf("podnet: removing route %s via %s: %v", cidr, gw, err)
		}
		log.Printf("podnet: removed route %s (its node is gone)", cidr)
		delete(a.routes, cidr)
	}
}

func (a *agent) writeConf(podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "kube-alive-podnet",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": []any{[]any{map[string]string{"subnet": podCIDR}}},
					"routes": []any{map[string]string{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if bytes.Equal(data, a.lastConf) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(a.cniConf), 0o755); err != nil {
		return err
	}
	tmp := a.cniConf + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	// The kubelet reads the directory; rename makes the new file appear whole.
	if err := os.Rename(tmp, a.cniConf); err != nil {
		return err
	}
	a.lastConf = data
	log.Printf("podnet: CNI config for %s written (%s)", podCIDR, a.cniConf)
	return nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
