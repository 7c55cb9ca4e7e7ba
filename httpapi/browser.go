package httpapi

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Protections against browsers. A web page the operator's browser opens can send requests to
// the node (a cross-site "simple" POST needs no CORS permission to be sent, only to be read), and
// by DNS rebinding can make the node's loopback address answer to the attacker's host name. So,
// on every listener and every route (middleware, so that every API family gets them):
//
//   - checkHost: without an admin token, a request whose Host is neither a loopback name or
//     address nor one of the allowed hosts is refused 421 MisdirectedRequest;
//   - checkOrigin: CORS headers only for the listed origins (preflights answered there); a
//     mutating request (POST, PUT, PATCH, DELETE) whose Origin is not listed is refused 403
//     OriginNotAllowed;
//   - requireJSON: a POST, PUT or PATCH (body or not: a bodyless cross-site POST is still a simple
//     request), and a DELETE that carries a body, must say Content-Type: application/json (a
//     charset parameter, if any, utf-8); else 415 UnsupportedMediaType. A browser cannot send
//     that type cross-site without a CORS preflight, which only listed origins pass.

// corsMaxAgeSeconds is how long a browser may cache a preflight answer.
const corsMaxAgeSeconds = "600"

// CORS answers: what a listed origin may send and read.
const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type"
	corsExposeHeaders = "Retry-After, WWW-Authenticate, Allow"
)

// browserPolicy is what the browser protections of one listener check.
type browserPolicy struct {
	// restrictHosts turns checkHost on.
	restrictHosts bool
	// allowedHosts are host names or addresses (lower case, no port) accepted beside loopback.
	allowedHosts map[string]bool
	// corsOrigins are the origins (scheme://host[:port], lower case) allowed to call from a browser.
	corsOrigins map[string]bool
}

func newBrowserPolicy(restrictHosts bool, allowedHosts, corsOrigins []string) browserPolicy {
	policy := browserPolicy{restrictHosts: restrictHosts, allowedHosts: map[string]bool{}, corsOrigins: map[string]bool{}}
	for _, host := range allowedHosts {
		policy.allowedHosts[normalizeHost(host)] = true
	}
	for _, origin := range corsOrigins {
		policy.corsOrigins[strings.ToLower(strings.TrimSuffix(origin, "/"))] = true
	}
	return policy
}

// ParseAllowedHosts reads a comma-separated list of host names or IP addresses (no port, no
// scheme), as the serve command's --allowed-hosts gives it. Empty items are skipped.
func ParseAllowedHosts(list string) ([]string, error) {
	var hosts []string
	for _, item := range strings.Split(list, ",") {
		host := strings.TrimSpace(item)
		if host == "" {
			continue
		}
		if strings.ContainsAny(host, "/@?#* ") || strings.Contains(host, "://") {
			return nil, fmt.Errorf("allowed host %q: give a host name or IP address, without scheme, path or wildcard", host)
		}
		if _, _, err := net.SplitHostPort(host); err == nil {
			return nil, fmt.Errorf("allowed host %q: give the host without a port", host)
		}
		hosts = append(hosts, normalizeHost(host))
	}
	return hosts, nil
}

// ParseCORSOrigins reads a comma-separated list of origins (http or https scheme, host, optional
// port; no path, no wildcard), as the serve command's --cors-origins gives it. Empty items are
// skipped.
func ParseCORSOrigins(list string) ([]string, error) {
	var origins []string
	for _, item := range strings.Split(list, ",") {
		origin := strings.TrimSuffix(strings.TrimSpace(item), "/")
		if origin == "" {
			continue
		}
		parsed, err := url.Parse(origin)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" ||
			parsed.User != nil || parsed.Path != "" || parsed.RawQuery != "" || parsed.Fragment != "" ||
			strings.Contains(origin, "*") {
			return nil, fmt.Errorf("CORS origin %q: give scheme://host[:port], e.g. https://app.example.com", origin)
		}
		origins = append(origins, strings.ToLower(origin))
	}
	return origins, nil
}

// normalizeHost lower-cases a host, strips one trailing dot and IPv6 brackets.
func normalizeHost(host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// HostAllowed reports whether a request's Host (name or address, with or without port) is
// loopback or one of allowedHosts (as ParseAllowedHosts returns them): what a node without an
// admin token serves. For handlers outside this package's engines (pprof).
func HostAllowed(requestHost string, allowedHosts []string) bool {
	return newBrowserPolicy(true, allowedHosts, nil).hostAllowed(requestHost)
}

// hostAllowed reports whether a request's Host (name or address, with or without port) is
// loopback or listed.
func (p browserPolicy) hostAllowed(requestHost string) bool {
	host := requestHost
	if h, _, err := net.SplitHostPort(requestHost); err == nil {
		host = h
	}
	host = normalizeHost(host)
	if host == "" {
		return false
	}
	if host == "localhost" || p.allowedHosts[host] {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHost refuses, when the policy restricts hosts, a request for a host this node does not
// answer to: the DNS-rebinding defence of a node without an admin token.
func (p browserPolicy) checkHost(c *gin.Context) {
	if p.restrictHosts && !p.hostAllowed(c.Request.Host) {
		writeError(c, &apiError{status: http.StatusMisdirectedRequest, code: CodeMisdirectedRequest,
			message: "this node does not answer to that Host: without an admin token it serves only localhost, 127.0.0.0/8, [::1] and --allowed-hosts"})
		return
	}
	c.Next()
}

// isMutating reports whether a method changes state.
func isMutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// checkOrigin answers CORS for listed origins and refuses mutating requests from others.
func (p browserPolicy) checkOrigin(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if len(p.corsOrigins) > 0 {
		c.Writer.Header().Add("Vary", "Origin")
	}
	if origin == "" {
		c.Next() // not a browser's cross-origin request (curl, SDKs, same-origin GET)
		return
	}
	listed := p.corsOrigins[strings.ToLower(origin)]
	preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
	if !listed {
		if preflight || isMutating(c.Request.Method) {
			writeError(c, &apiError{status: http.StatusForbidden, code: CodeOriginNotAllowed,
				message: "requests from this origin are not allowed (see --cors-origins)"})
			return
		}
		c.Next() // a read: answered without CORS headers, so the page cannot read it
		return
	}
	header := c.Writer.Header()
	header.Set("Access-Control-Allow-Origin", origin)
	if preflight {
		// Answered before authentication: gin's Allow (set for a known path) would tell a
		// client without the token which routes exist.
		header.Del("Allow")
		header.Add("Vary", "Access-Control-Request-Method")
		header.Add("Vary", "Access-Control-Request-Headers")
		header.Set("Access-Control-Allow-Methods", corsAllowMethods)
		header.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		header.Set("Access-Control-Max-Age", corsMaxAgeSeconds)
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	header.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	c.Next()
}

// requireJSON refuses a request that must carry JSON but says another Content-Type. Requests
// that match no route are left to the 404 and 405 answers (their bodies are never read).
func requireJSON(c *gin.Context) {
	request := c.Request
	needed := request.Method == http.MethodPost || request.Method == http.MethodPut || request.Method == http.MethodPatch ||
		(request.Method == http.MethodDelete && request.ContentLength != 0)
	if !needed || c.FullPath() == "" {
		c.Next()
		return
	}
	// One Content-Type: of two, which one a proxy on the way read is anyone's guess.
	if values := request.Header.Values("Content-Type"); len(values) != 1 || !isJSONContentType(values[0]) {
		writeError(c, &apiError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "Content-Type must be application/json (charset, if given, utf-8), once"})
		return
	}
	c.Next()
}

// isJSONContentType reports whether a Content-Type header names JSON in UTF-8.
func isJSONContentType(value string) bool {
	if value == "" {
		return false
	}
	mediaType, params, err := mime.ParseMediaType(value)
	if err != nil || mediaType != "application/json" {
		return false
	}
	charset, given := params["charset"]
	return !given || strings.EqualFold(charset, "utf-8")
}
