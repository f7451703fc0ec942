test "this one passes" {
  expect {
    status = "accepted"
  }
}

test "audio goes to the desk" {
  call { type = "A" }
  device "console" { token = "abcdef0123456789-desk" }
  expect {
    status = "no_devices"
    routes = ["video", "all"]
    notifier "desk" {
      role     = "notify"
      delivers = true
    }
    notifier "hook" {
      role     = "fallback"
      route    = "video"
      devices  = 2
      disabled = true
    }
    fallback    = ["hook"]
    no_notifier = ["desk", "hook", "pager"]
  }
}

test "payloads" {
  call {
    type      = "V"
    from_user_id = "9286"
  }
  device "console" {}
  expect {
    notifier "desk" {
      payload = {
        caller = "9286"
        video  = true
        extra  = { deep = [1, 2] }
      }
    }
  }
}

test "why a notifier does not deliver" {
  call {
    from_service_id = "gold"
  }
  device "console" {}
  expect {
    notifier "pager" {
      delivers = true
    }
    notifier "vip" {
      delivers = true
    }
  }
}

test "a desk without a device" {
  call { type = "V" }
  expect {
    notifier "desk" {
      delivers = true
    }
    notifier "hook" {
      role = "notify"
    }
  }
}
