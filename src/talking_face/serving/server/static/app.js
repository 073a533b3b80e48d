// The live page: a photo and speech (a file or the microphone) go to WS /v1/stream as 16-bit PCM in 40 ms
// chunks; frames come back as [uint32 index, float64 timestamp, JPEG] and are drawn on the canvas, a file's
// frames in step with its playback, the microphone's as soon as they arrive. Plain JS, no build step.
// A server with access tokens gets the token in the first message (browsers cannot set WebSocket headers);
// the page asks for it once and keeps it for this tab (sessionStorage), never in a URL.
"use strict";

const CHUNK_S = 0.04;
const PLAYBACK_MARGIN_S = 0.3; // playback waits the look-ahead plus this, so frames are there in time
const $ = (id) => document.getElementById(id);

let photoBytes = null;
let current = null; // the running session: {socket, stop()}

function showStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function setRunning(running) {
  $("stop").disabled = !running;
  $("mic").disabled = running || !photoBytes;
  $("play-file").disabled = running || !photoBytes || !$("audio").files.length;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function toPcm16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
  return pcm.buffer;
}

// Draws frames: each at clock start + its timestamp (a file), or as soon as it arrives (start null).
class FramePlayer {
  constructor() {
    this.canvas = $("face");
    this.context = this.canvas.getContext("2d");
    this.queue = [];
    this.count = 0;
    this.start = undefined;
    this.firstArrival = null;
    this.running = true;
  }

  ready(message) {
    this.canvas.width = message.width;
    this.canvas.height = message.height;
    $("lookahead").textContent = message.lookahead_ms;
    $("frame-count").textContent = "0";
    this.lookaheadS = message.lookahead_ms / 1000;
  }

  play(startS) {
    this.start = startS;
    const draw = () => {
      if (!this.running) return;
      const now = performance.now() / 1000;
      let shown = null;
      while (this.queue.length && (this.start === null || this.start + this.queue[0].timestamp <= now)) {
        shown = this.queue.shift();
      }
      if (shown) this.context.drawImage(shown.bitmap, 0, 0);
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
  }

  async frame(buffer) {
    const header = new DataView(buffer);
    const index = header.getUint32(0);
    const timestamp = header.getFloat64(4);
    const bitmap = await createImageBitmap(new Blob([new Uint8Array(buffer, 12)], { type: "image/jpeg" }));
    this.queue.push({ index, timestamp, bitmap });
    this.queue.sort((a, b) => a.index - b.index);
    this.count += 1;
    const now = performance.now() / 1000;
    if (this.firstArrival === null) this.firstArrival = now;
    $("frame-count").textContent = String(this.count);
    $("last-index").textContent = String(index);
    if (now > this.firstArrival) $("fps").textContent = ((this.count - 1) / (now - this.firstArrival)).toFixed(1);
  }
}

async function health() {
  return (await fetch("/healthz")).json();
}

async function serverHasRoom() {
  const state = await health();
  if (state.sessions >= state.max_sessions) {
    throw new Error(`server busy: ${state.sessions} of ${state.max_sessions} sessions in use, try again later`);
  }
}

function accessToken() {
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem("talking-face-token", token);
  return token || undefined;
}

// Opens a stream for audio at `sampleRate`; resolves with {socket, player} once the server is ready.
async function openStream(sampleRate) {
  await serverHasRoom();
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
    socket.binaryType = "arraybuffer";
    const player = new FramePlayer();
    let isReady = false;
    socket.onopen = () => {
      socket.send(JSON.stringify({ sample_rate: sampleRate, channels: 1, format: "jpeg", token: accessToken() }));
      socket.send(photoBytes);
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") {
        player.frame(event.data);
        return;
      }
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        isReady = true;
        player.ready(message);
        resolve({ socket, player });
      } else if (message.type === "error") {
        showStatus(`Error: ${message.message}`, true);
        if (message.code === 1008 && message.message.includes("access token")) {
          sessionStorage.removeItem("talking-face-token");
          $("access").hidden = false;
        }
      } else if (message.type === "end") {
        const dropped = message.dropped ? `, ${message.dropped} dropped by a slow connection` : "";
        showStatus(`Done: ${message.frames} frames${dropped}.`);
      }
    };
    socket.onclose = (event) => {
      if (!isReady) reject(new Error(event.reason || `the connection closed (code ${event.code})`));
      if (current && current.socket === socket) current.stop(false);
    };
  });
}

async function playFile() {
  const audioContext = new AudioContext();
  const decoded = await audioContext.decodeAudioData(await $("audio").files[0].arrayBuffer());
  const samples = new Float32Array(decoded.length);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const channel = decoded.getChannelData(c);
    for (let i = 0; i < samples.length; i++) samples[i] += channel[i] / decoded.numberOfChannels;
  }
  const { socket, player } = await openStream(decoded.sampleRate);
  let sending = true;
  const source = audioContext.createBufferSource();
  current = {
    socket,
    stop(sendEnd = true) {
      sending = false;
      if (sendEnd && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
      if (!sendEnd) {
        player.running = false;
        source.stop();
        audioContext.close();
        current = null;
        setRunning(false);
      }
    },
  };
  setRunning(true);
  showStatus("Streaming the file...");
  const delay = player.lookaheadS + PLAYBACK_MARGIN_S;
  source.buffer = decoded;
  source.connect(audioContext.destination);
  source.start(audioContext.currentTime + delay);
  const started = performance.now();
  player.play(started / 1000 + delay);
  const chunk = Math.round(CHUNK_S * decoded.sampleRate);
  for (let offset = 0; offset < samples.length && sending; offset += chunk) {
    await sleep(started + (1000 * offset) / decoded.sampleRate - performance.now());
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(toPcm16(samples.subarray(offset, offset + chunk)));
  }
  if (sending && current) current.stop(true);
}

async function speak() {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  const audioContext = new AudioContext();
  audioContext.resume(); // created after an await: some browsers start it suspended until resumed
  await audioContext.audioWorklet.addModule("/static/pcm-worklet.js");
  let stream;
  try {
    stream = await openStream(audioContext.sampleRate);
  } catch (error) {
    media.getTracks().forEach((track) => track.stop());
    audioContext.close();
    throw error;
  }
  const { socket, player } = stream;
  const capture = new AudioWorkletNode(audioContext, "pcm-capture");
  const chunk = Math.round(CHUNK_S * audioContext.sampleRate);
  let pending = [];
  let pendingLength = 0;
  capture.port.onmessage = (event) => {
    pending.push(event.data);
    pendingLength += event.data.length;
    if (pendingLength < chunk || socket.readyState !== WebSocket.OPEN) return;
    const joined = new Float32Array(pendingLength);
    let at = 0;
    for (const block of pending) {
      joined.set(block, at);
      at += block.length;
    }
    pending = [];
    pendingLength = 0;
    socket.send(toPcm16(joined));
  };
  const input = audioContext.createMediaStreamSource(media);
  input.connect(capture);
  capture.connect(audioContext.destination); // pulls the node; it outputs silence
  current = {
    socket,
    stop(sendEnd = true) {
      input.disconnect();
      media.getTracks().forEach((track) => track.stop());
      if (sendEnd && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
      if (!sendEnd) {
        player.running = false;
        audioContext.close();
        current = null;
        setRunning(false);
      }
    },
  };
  setRunning(true);
  player.play(null);
  showStatus("Listening: speak, the face follows. Stop when done.");
}

function run(start) {
  return async () => {
    setRunning(true);
    try {
      await start();
    } catch (error) {
      showStatus(`Error: ${error.message}`, true);
      setRunning(false);
    }
  };
}

$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  photoBytes = await file.arrayBuffer();
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  setRunning(false);
  showStatus("Now play an audio file or speak into the microphone.");
});
$("audio").addEventListener("change", () => setRunning(Boolean(current)));
$("token").value = sessionStorage.getItem("talking-face-token") || "";
health().then((state) => {
  $("access").hidden = state.auth !== "token" || Boolean($("token").value);
});
$("play-file").addEventListener("click", run(playFile));
$("mic").addEventListener("click", run(speak));
$("stop").addEventListener("click", () => current && current.stop(true));
