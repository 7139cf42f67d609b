// The opener page's entry point: the libraries for tests, then the viewer on the stick's zip.
import "./hooks.js";
import { startApp } from "./ui/app.js";

startApp(document.getElementById("app"));
