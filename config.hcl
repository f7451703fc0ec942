# ringside's default configuration: `go run .` serves with it.
# No secrets and no external service: every call is delivered as a webhook
# to the app server next door (`go run ./examples/app-server`).
# The full reference is in README.md.

server {
  listen       = "127.0.0.1:20200" # public: notify_cb (use 0.0.0.0:20200 to accept LINE Planet from outside)
  admin_listen = "127.0.0.1:20201" # devices API, /healthz, /readyz, /metrics
}

directory "embedded" {
  path = "ringside.db"
}

notifier "app_server" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:8080/ringside/incoming-call"
  timeout = "2s"
  payload = {
    video = call.type == "V"
  }
}

route "all" {
  notify = ["app_server"]
}
