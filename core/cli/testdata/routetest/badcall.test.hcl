test "names the config does not have" {
  device "consle" {}
  expect {
    routes = ["video", "al"]
    notifier "dsk" {}
    fallback    = ["hook"]
    no_notifier = ["pagr"]
  }
}

test "a call no callback could be" {
  call {
    sid   = "not-a-uuid"
  }
  expect {}
}

test "a wrong type" {
  call { type = "video" }
  expect {}
}
