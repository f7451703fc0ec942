# ringside's default configuration.
No secrets and no external service.

server {
  listen = "127.0.0.1:20200"
}
