server {
  notify_token = file("secrets/notify-token.txt")
}
