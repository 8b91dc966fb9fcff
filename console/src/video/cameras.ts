// The cameras in the caller's scope as the camera wall reports them, flattened for the live and playback pages.
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";

export type CameraWall = components["schemas"]["CameraWall"];
export type WallCamera = components["schemas"]["WallCamera"];
export type CameraCondition = WallCamera["condition"];

export interface CameraRef {
  camera: WallCamera;
  commune: string;
  insee: string;
  site: string;
}

export interface WallFilters {
  insee_code?: string;
  tenant_id?: string;
  condition?: CameraCondition[];
}

export async function loadWall(filters: WallFilters = {}): Promise<CameraWall> {
  return unwrap(await api.GET("/camera-wall", { params: { query: filters } }));
}

export function flatten(wall: CameraWall): CameraRef[] {
  return wall.communes.flatMap((commune) => commune.sites.flatMap((site) => site.cameras.map((camera) => ({
    camera, commune: commune.name, insee: commune.insee_code, site: site.name,
  }))));
}
