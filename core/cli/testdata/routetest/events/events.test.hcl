test "a missed call notifies the callee" {
  call {
    on         = "call_event"
    terminate  = 18
    duration   = 0
    to_user_id = "2809"
  }
  device "console" { token = "abcdef0123456789-desk" }
  expect {
    status = "accepted"
    routes = ["cancel", "missed"]
    notifier "notice" {
      route    = "missed"
      delivers = true
      payload  = { event = "call_end", outcome = "missed", text = "You missed a call from caller" }
    }
  }
}

test "an answered call notifies no one" {
  call {
    on         = "call_event"
    terminate  = 16
    duration   = 42
    start_time = 1764842404
  }
  expect {
    status = "unrouted"
    routes = []
  }
}

test "a group call starts at its host" {
  call {
    on      = "group_call_event"
    sc      = "S"
    user_id = "alice"
    host_id = "alice"
  }
  device "console" { token = "0123456789abcdef-alice" }
  expect {
    status = "accepted"
    routes = ["group"]
    notifier "desk" {
      devices = 1
      payload = { event = "group_call", app_host_uid = "alice", sc = "S" }
    }
  }
}

test "a group call's other changes ring no one" {
  call {
    on = "group_call_event"
    sc = "C"
  }
  expect { status = "unrouted" }
}
