// Continuous QR scanning with the phone's camera, decoded by zxing-wasm served from our own
// /static (never a CDN). A code found opens the staff view of that coupon.
import { prepareZXingModule, readBarcodes } from "./zxing/reader/index.js";

const wasmUrl = new URL("./zxing/zxing_reader.wasm", import.meta.url).href;
prepareZXingModule({
  overrides: {
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? wasmUrl : prefix + path),
  },
  fireImmediately: true,
});

const video = document.getElementById("camera");
const status = document.getElementById("scan-status");
const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });
const READ_OPTIONS = { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 };
let found = false;

function say(text) {
  status.textContent = text;
}

async function scanFrame() {
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) return null;
  canvas.width = width;
  canvas.height = height;
  context.drawImage(video, 0, 0, width, height);
  const results = await readBarcodes(context.getImageData(0, 0, width, height), READ_OPTIONS);
  const hit = results.find((result) => result.isValid && result.text);
  return hit ? hit.text : null;
}

async function loop() {
  while (!found) {
    try {
      const text = await scanFrame();
      if (text) {
        found = true;
        say("Code found, checking…");
        // Only our own page is opened, whatever the QR says; the server decides what it means.
        window.location.assign("/scan/coupon?code=" + encodeURIComponent(text.trim()));
        return;
      }
    } catch (error) {
      say("Decoder problem: " + error + ". Type the code below.");
    }
    await new Promise((resolve) => setTimeout(resolve, 120));
  }
}

async function start() {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    say("The camera needs HTTPS. Type the code below.");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    video.srcObject = stream;
    await video.play();
    say("Point the camera at the customer's QR code");
    loop();
  } catch (error) {
    say("No camera (" + (error.message || error.name) + "). Type the code below.");
  }
}

window.addEventListener("pageshow", () => {
  found = false;
});
start();
