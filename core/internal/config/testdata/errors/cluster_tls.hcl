cluster "redis" {
  addresses = ["127.0.0.1:6379"]
  tls {
    ca_file  = "tls/redis-ca.pem"
    key_file = "tls/redis-key.pem"
    sever_name = "redis.internal"
  }
}
