server {
  admin_listen = "0.0.0.0:20201"
  admin_token  = env("RINGSIDE_ADMIN_TOKEN")
}
