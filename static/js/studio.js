/* The studio's inputs (templates/generations/_studio_inputs.html). Without this file the page still
   works: "Your uploads" are checkboxes and the Upload button posts the form with its file. With it,
   files go up one by one with a progress bar, refusals are said at once, and the chosen inputs are
   an ordered list (hidden inputs in that order are what the form posts) with previews, reordering
   and removal. The server's GenerationForm has the last word on every rule (CONTRACT §4b); the
   checks here only say early what it would say. */
(function () {
  "use strict";
  var form = document.getElementById("generate-form");
  var studio = document.getElementById("inputs");
  if (!form || !studio) return;
  var data = JSON.parse(document.getElementById("studio-data").textContent);
  var uploadUrl = studio.dataset.uploadUrl;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var fileInput = document.getElementById("id_file");
  var dropzone = document.getElementById("dropzone");
  var uploading = document.getElementById("uploading");
  var errorsBox = document.getElementById("studio-errors");
  var chosenBox = document.getElementById("chosen");
  var flf = document.getElementById("id_first_last_frame");
  var lists = {
    image: document.getElementById("chosen-images"),
    video: document.getElementById("chosen-video"),
    audio: document.getElementById("chosen-audio")
  };
  var names = { image: "image_ids", video: "video_id", audio: "audio_ids" };
  var MIB = 1024 * 1024;
  var CAPS = { image: 10 * MIB, video: 50 * MIB, audio: 15 * MIB };
  var KIND_WORDS = { image: "Pictures", video: "Videos", audio: "Sounds" };

  var library = {};
  data.library.forEach(function (item) { library[item.id] = item; });
  var state = {
    image: data.chosen.images.filter(function (id) { return library[id]; }),
    video: data.chosen.video && library[data.chosen.video] ? [data.chosen.video] : [],
    audio: data.chosen.audios.filter(function (id) { return library[id]; })
  };

  // Scripting takes over from the plain form: the Upload button and the checkboxes' own names go.
  var nojs = studio.querySelector(".nojs-upload");
  if (nojs) nojs.remove();
  fileInput.removeAttribute("name");
  chosenBox.hidden = false;
  studio.classList.add("scripted");

  function kindOf(file) {
    var type = (file.type || "").toLowerCase();
    var name = (file.name || "").toLowerCase();
    if (/^image\/(jpeg|png|webp)$/.test(type) || /\.(jpe?g|png|webp)$/.test(name)) return "image";
    if (/^video\/(mp4|quicktime)$/.test(type) || /\.(mp4|mov)$/.test(name)) return "video";
    if (/^audio\//.test(type) || /\.(mp3|wav|m4a)$/.test(name)) return "audio";
    return null;
  }

  function say(messages) {
    errorsBox.textContent = "";
    messages.forEach(function (text) {
      var p = document.createElement("p");
      p.textContent = text;
      errorsBox.appendChild(p);
    });
    errorsBox.hidden = messages.length === 0;
  }

  function problems() {
    var found = [];
    var images = state.image.length, video = state.video.length, audios = state.audio.length;
    if (images > data.limits.images) found.push("Use at most " + data.limits.images + " pictures; you chose " + images + ".");
    if (audios > data.limits.audios) found.push("Use at most " + data.limits.audios + " sounds; you chose " + audios + ".");
    if (audios && !images && !video) found.push("Audio needs an image or a video beside it: add one, or remove the sound.");
    if (flf.checked) {
      if (images < 1 || images > 2) found.push("A first/last-frame video takes one or two images.");
      else if (video || audios) found.push("A first/last-frame video takes images only: remove the video and the sound.");
    }
    return found;
  }

  function button(text, label, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "icon-button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function slotLabel(role, index) {
    if (role === "image" && flf.checked) return index === 0 ? "First frame" : index === 1 ? "Last frame" : "Picture " + (index + 1);
    if (role === "image") return "Picture " + (index + 1);
    if (role === "audio") return "Sound " + (index + 1);
    return "Video";
  }

  function preview(item) {
    var box = document.createElement("span");
    box.className = "input-thumb";
    if (item.kind === "audio" && item.file_url) {
      var audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = item.file_url;
      audio.setAttribute("aria-label", "Listen to " + item.name);
      box.classList.add("is-audio");
      box.appendChild(audio);
    } else if (item.thumb_url) {
      var img = document.createElement("img");
      img.src = item.thumb_url;
      img.alt = "";
      box.appendChild(img);
    }
    return box;
  }

  function render() {
    ["image", "video", "audio"].forEach(function (role) {
      var list = lists[role];
      list.textContent = "";
      state[role].forEach(function (id, index) {
        var item = library[id];
        var li = document.createElement("li");
        li.className = "input-item";
        li.dataset.id = id;
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = names[role];
        hidden.value = id;
        li.appendChild(hidden);
        li.appendChild(preview(item));
        var text = document.createElement("span");
        text.className = "input-text";
        var label = document.createElement("strong");
        label.className = "slot-label";
        label.textContent = slotLabel(role, index);
        var name = document.createElement("span");
        name.className = "input-name";
        name.textContent = item.name;
        var detail = document.createElement("span");
        detail.className = "muted input-detail";
        detail.textContent = item.detail;
        text.appendChild(label);
        text.appendChild(name);
        text.appendChild(detail);
        li.appendChild(text);
        var tools = document.createElement("span");
        tools.className = "input-tools";
        if (role !== "video") {
          var up = button("↑", "Move " + item.name + " earlier", function () { move(role, index, -1); });
          var down = button("↓", "Move " + item.name + " later", function () { move(role, index, 1); });
          up.disabled = index === 0;
          down.disabled = index === state[role].length - 1;
          tools.appendChild(up);
          tools.appendChild(down);
        }
        tools.appendChild(button("✕", "Remove " + item.name, function () { remove(role, id); }));
        li.appendChild(tools);
        list.appendChild(li);
      });
      var group = list.closest(".chosen-group");
      var count = group.querySelector("[data-count]");
      if (count) count.textContent = state[role].length ? "(" + state[role].length + ")" : "";
      group.hidden = role !== "image" && !state[role].length;
    });
    var slots = document.getElementById("flf-slots");
    slots.hidden = !flf.checked;
    slots.querySelectorAll(".flf-slot").forEach(function (slot) {
      slot.hidden = state.image.length > Number(slot.dataset.slot);
    });
    lists.image.closest(".chosen-group").hidden = !flf.checked && !state.image.length;
    studio.classList.toggle("flf-on", flf.checked);
    var any = state.image.length || state.video.length || state.audio.length;
    document.getElementById("chosen-empty").hidden = Boolean(any) || flf.checked;
    // "Your uploads": a ticked box is a chosen input.
    studio.querySelectorAll(".library-item").forEach(function (li) {
      var box = li.querySelector("input[type=checkbox]");
      var item = library[li.dataset.id];
      if (box && item) box.checked = state[item.kind].indexOf(item.id) !== -1;
    });
    say(problems());
    var model = state.video.length ? "omni-reference" : state.image.length ? "image-to-video" : "text-to-video";
    form.dataset.model = model;
    form.dataset.videoSeconds = state.video.length ? String(library[state.video[0]].duration_seconds || 0) : "0";
    form.dispatchEvent(new CustomEvent("studio:change", { bubbles: true }));
  }

  function add(item) {
    library[item.id] = item;
    if (item.kind === "video") state.video = [item.id];  // one reference video: a new one replaces it
    else if (state[item.kind].indexOf(item.id) === -1) state[item.kind].push(item.id);
    render();
  }

  function remove(role, id) {
    state[role] = state[role].filter(function (other) { return other !== id; });
    render();
  }

  function move(role, index, step) {
    var list = state[role];
    var target = index + step;
    if (target < 0 || target >= list.length) return;
    var moved = list.splice(index, 1)[0];
    list.splice(target, 0, moved);
    render();
    var again = lists[role].children[target];
    if (again) {
      var focus = again.querySelectorAll(".icon-button")[step < 0 ? 0 : 1];
      if (focus && !focus.disabled) focus.focus();
    }
  }

  function libraryItem(item) {
    var grid = studio.querySelector(".library-grid");
    if (!grid) return;
    var li = document.createElement("li");
    li.className = "library-item kind-" + item.kind;
    li.dataset.id = item.id;
    var label = document.createElement("label");
    label.className = "library-pick";
    var box = document.createElement("input");
    box.type = "checkbox";
    label.appendChild(box);
    var thumb = document.createElement("span");
    thumb.className = "library-thumb";
    if (item.thumb_url) {
      var img = document.createElement("img");
      img.src = item.thumb_url;
      img.alt = "";
      thumb.appendChild(img);
    } else {
      var icon = document.createElement("span");
      icon.className = "audio-icon";
      icon.textContent = "♪";
      thumb.appendChild(icon);
    }
    label.appendChild(thumb);
    var name = document.createElement("span");
    name.className = "library-name";
    name.textContent = item.name;
    label.appendChild(name);
    var detail = document.createElement("span");
    detail.className = "library-detail muted";
    detail.textContent = item.detail;
    label.appendChild(detail);
    li.appendChild(label);
    grid.insertBefore(li, grid.firstChild);
    wireLibraryItem(li);
  }

  function wireLibraryItem(li) {
    var box = li.querySelector("input[type=checkbox]");
    if (box) {
      box.removeAttribute("name");  // the ordered list's hidden inputs are what the form posts
      box.addEventListener("change", function () {
        var item = library[li.dataset.id];
        if (!item) return;
        if (box.checked) add(item);
        else remove(item.kind, item.id);
      });
    }
    var del = li.querySelector(".library-delete");
    if (del) {
      del.addEventListener("click", function (event) {
        event.preventDefault();
        var request = new XMLHttpRequest();
        request.open("POST", del.getAttribute("formaction"));
        request.setRequestHeader("X-CSRFToken", csrf);
        request.setRequestHeader("Accept", "application/json");
        request.onload = function () {
          if (request.status !== 200) return;
          var item = library[li.dataset.id];
          if (item) remove(item.kind, item.id);
          li.remove();
        };
        request.send();
      });
    }
  }

  studio.querySelectorAll(".library-item").forEach(wireLibraryItem);

  function refuse(row, message) {
    row.classList.add("refused");
    row.setAttribute("role", "alert");
    row.querySelector(".upload-status").textContent = message;
    var bar = row.querySelector("progress");
    if (bar) bar.remove();
    var dismiss = button("✕", "Dismiss", function () { row.remove(); });
    row.appendChild(dismiss);
  }

  function upload(file) {
    var row = document.createElement("li");
    row.className = "upload-row";
    var name = document.createElement("span");
    name.className = "input-name";
    name.textContent = file.name;
    var status = document.createElement("span");
    status.className = "upload-status muted";
    status.textContent = "Uploading…";
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    row.appendChild(name);
    row.appendChild(bar);
    row.appendChild(status);
    uploading.appendChild(row);

    var kind = kindOf(file);
    if (!kind) {
      refuse(row, "This file is not an image, video or sound we can take. Upload a JPEG, PNG or WebP image, an MP4 or MOV video, or an MP3, WAV or M4A sound.");
      return;
    }
    if (file.size > CAPS[kind]) {
      refuse(row, "This file is too large: " + KIND_WORDS[kind].toLowerCase() + " may be at most " + CAPS[kind] / MIB + " MiB.");
      return;
    }
    var body = new FormData();
    body.append("file", file);
    var request = new XMLHttpRequest();
    request.open("POST", uploadUrl);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.onprogress = function (event) {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
      if (event.loaded === event.total) status.textContent = "Checking…";
    };
    request.onload = function () {
      var answer = null;
      try { answer = JSON.parse(request.responseText); } catch (e) { answer = null; }
      if (request.status === 201 && answer && answer.upload) {
        row.remove();
        libraryItem(answer.upload);
        add(answer.upload);
        return;
      }
      var message = answer && answer.error ? answer.error.message : "The upload failed (HTTP " + request.status + "). Try again.";
      refuse(row, message);
    };
    request.onerror = function () { refuse(row, "The upload broke off. Check your connection and try again."); };
    request.send(body);
  }

  function takeFiles(files) {
    Array.prototype.forEach.call(files, upload);
  }

  fileInput.addEventListener("change", function () {
    takeFiles(fileInput.files);
    fileInput.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () { dropzone.classList.remove("over"); });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files) takeFiles(event.dataTransfer.files);
  });
  flf.addEventListener("change", render);

  render();
})();
