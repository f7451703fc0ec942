package sdk

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// ParseEndpoint parses raw, an attribute naming where a plugin sends its
// requests: an absolute URL with one of schemes (http or https when none
// is given), a host, and no userinfo, query or fragment. Its errors read
// after the attribute's name ("must name a host") and never quote raw,
// which may carry credentials.
func ParseEndpoint(raw string, schemes ...string) (*url.URL, error) {
	if len(schemes) == 0 {
		schemes = []string{"http", "https"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("is not a valid URL")
	}
	switch {
	case !slices.Contains(schemes, u.Scheme):
		return nil, errors.New("must be an absolute " + strings.Join(schemes, " or ") + " URL")
	case u.Hostname() == "":
		return nil, errors.New("must name a host")
	case u.User != nil:
		return nil, errors.New("must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("must not have a query or fragment")
	}
	return u, nil
}
