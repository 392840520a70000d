/*
 * http_url.c: URL splitting and relative-reference resolution for the HTTP
 * probes and the redirect policy (mpic_http_url_parse of http.h). Uses
 * libcurl's URL API (curl_url); host names are lower-cased, IPv6 brackets
 * removed, zone IDs reported separately. Knows nothing of Lua.
 */
#include "http.h"
#include "netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* ---- URL parsing (libcurl's URL API) -------------------------------------- */

void mpic_http_url_clear(struct mpic_url *u)
{
    curl_free(u->url);
    curl_free(u->scheme);
    curl_free(u->host);
    curl_free(u->zone);
    curl_free(u->path);
    curl_free(u->query);
    memset(u, 0, sizeof *u);
}

static int url_status(CURLUcode c)
{
    switch (c) {
    case CURLUE_OK: return MPIC_URL_OK;
    case CURLUE_NO_HOST: return MPIC_URL_NO_HOST;
    case CURLUE_BAD_HOSTNAME:
    case CURLUE_BAD_IPV6: return MPIC_URL_BAD_HOST;
    case CURLUE_OUT_OF_MEMORY: return MPIC_URL_NOMEM;
    default: return MPIC_URL_MALFORMED;
    }
}

/* "scheme:///..." names no host; libcurl would skip the extra slash. */
static int has_empty_authority(const char *url)
{
    const char *p = url;
    if (!p || !isalpha((unsigned char)*p))
        return 0;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    return strncmp(p, ":///", 4) == 0;
}

int mpic_http_url_parse(const char *base, const char *url, struct mpic_url *out)
{
    const unsigned int fl = CURLU_NON_SUPPORT_SCHEME;
    CURLU *u = curl_url();
    char *ptext = NULL;
    int rc = MPIC_URL_NOMEM;

    memset(out, 0, sizeof *out);
    if (!u)
        return rc;
    if (base && (rc = url_status(curl_url_set(u, CURLUPART_URL, base, fl))) != 0)
        goto out;
    if ((rc = url_status(curl_url_set(u, CURLUPART_URL, url, fl))) != 0)
        goto out;
    if (has_empty_authority(url)) {
        rc = MPIC_URL_NO_HOST;
        goto out;
    }
    curl_url_get(u, CURLUPART_ZONEID, &out->zone, 0);
    if ((rc = url_status(curl_url_get(u, CURLUPART_HOST, &out->host, 0))) != 0)
        goto out;
    if (!out->host[0]) {
        rc = MPIC_URL_NO_HOST;
        goto out;
    }
    for (char *p = out->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if ((rc = url_status(curl_url_set(u, CURLUPART_HOST, out->host, 0))) != 0)
        goto out;
    size_t hl = strlen(out->host);
    if (out->host[0] == '[' && hl >= 2 && out->host[hl - 1] == ']') {
        memmove(out->host, out->host + 1, hl - 2);
        out->host[hl - 2] = '\0';
    }
    struct mpic_addr a;
    out->host_is_ip = mpic_netaddr_parse(out->host, &a) == 0 ? a.family : 0;
    curl_url_get(u, CURLUPART_QUERY, &out->query, 0);
    if ((rc = url_status(curl_url_get(u, CURLUPART_SCHEME, &out->scheme, 0))) != 0 ||
        (rc = url_status(curl_url_get(u, CURLUPART_PATH, &out->path, 0))) != 0 ||
        (rc = url_status(curl_url_get(u, CURLUPART_URL, &out->url, 0))) != 0)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &ptext, 0) == CURLUE_OK && ptext) {
        out->port_explicit = 1;
    } else if (curl_url_get(u, CURLUPART_PORT, &ptext, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        ptext = NULL;
    }
    out->port = ptext ? strtol(ptext, NULL, 10) : 0;
    rc = MPIC_URL_OK;
out:
    curl_free(ptext);
    curl_url_cleanup(u);
    if (rc != MPIC_URL_OK)
        mpic_http_url_clear(out);
    return rc;
}
