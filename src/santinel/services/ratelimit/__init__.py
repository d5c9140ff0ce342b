"""Traffic control: rate limits, quotas and brute-force protection (issue 6).

- `rates`: the `N/unit` grammar of limits and quotas, and a client's `Policy` (pure);
- `costs`: what one FHIR interaction costs in quota units (pure);
- `bucket`: the token-bucket arithmetic (pure; `redis_store`'s Lua script mirrors it);
- `headers`: the IETF `RateLimit-Policy` / `RateLimit` fields (pure);
- `memory` / `redis_store`: where buckets and failure counters live (one process, or shared by
  every node through Redis);
- `attempts`: sign-in and client-authentication failures slowed, then locked;
- `limiter`: `TrafficControl`, built once by the container, which decides;
- `events`: the one function security events go through (the audit hook).
"""
