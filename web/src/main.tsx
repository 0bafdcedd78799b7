import { render } from "preact";
import { App } from "./App.tsx";
import { loadSession } from "./api.ts";
import "./styles.css";

void loadSession();
render(<App />, document.getElementById("app") as HTMLElement);
