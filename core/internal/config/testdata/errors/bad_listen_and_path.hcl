server {
  listen       = "0.0.0.0"
  notify_path  = "notify_cb"
  admin_listen = "127.0.0.1:99999"
}
