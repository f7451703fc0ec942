cluster "redis" {
  addresses  = ["127.0.0.1:6379"]
  key_prefix = "ringside:{prod}:"
  cache_ttl  = "10 seconds"
}
